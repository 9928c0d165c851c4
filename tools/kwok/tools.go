//go:build tools

// Package tools pins the kwok program that scripts/install-tools builds.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
