module github.com/crowsnest-siem/crowsnest/cli

go 1.26.0
