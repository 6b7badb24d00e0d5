module github.com/crowsnest-siem/crowsnest/collectors

go 1.26.0
