module github.com/crowsnest-siem/crowsnest/sinks

go 1.26.0
