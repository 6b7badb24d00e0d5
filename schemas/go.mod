module github.com/crowsnest-siem/crowsnest/schemas

go 1.26
