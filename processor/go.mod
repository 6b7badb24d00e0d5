module github.com/crowsnest-siem/crowsnest/processor

go 1.26.0
