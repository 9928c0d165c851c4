//go:build tools

// Package tools pins the etcd server that scripts/install-tools builds.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
