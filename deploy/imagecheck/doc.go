// Package imagecheck holds the checks on the Dockerfiles under deploy/docker.
package imagecheck
