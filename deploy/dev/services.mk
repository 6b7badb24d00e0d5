# Development services (Elasticsearch, ClickHouse HTTP endpoint) for tests and
# local runs; included by the top-level Makefile. See docs/services.md.
#
#   make services-up       start both (idempotent); prints the CROWSNEST_TEST_* variables
#   make services-down     stop both
#   make services-status   what runs, where, which version, how much memory
#   make services-test     the chdb-server's own test suite (starts its own server)
#
# One service only: make services-up SERVICE=elasticsearch (or clickhouse).

SERVICES_SH := $(dir $(lastword $(MAKEFILE_LIST)))services.sh
SERVICE ?=

.PHONY: services-up services-down services-status services-test

services-up: ## start Elasticsearch and the ClickHouse HTTP endpoint (SERVICE=elasticsearch|clickhouse for one)
	@bash $(SERVICES_SH) up $(SERVICE)

services-down: ## stop the development services
	@bash $(SERVICES_SH) down $(SERVICE)

services-status: ## show which development services run, their versions and memory
	@bash $(SERVICES_SH) status $(SERVICE)

services-test: ## run the chdb-server test suite (pytest)
	@bash $(SERVICES_SH) test
