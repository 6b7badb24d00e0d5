module github.com/crowsnest-siem/crowsnest/daemon

go 1.26
