module github.com/crowsnest-siem/crowsnest/bus

go 1.26
