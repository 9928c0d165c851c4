//go:build tools

// Package tools pins Velero (`velero`: the client and, as `velero server`, the server), the
// backup and restore tool of the Kubernetes ecosystem that `dcops dr backup` and
// `dcops dr restore-test` drive (infra/dr/backup.py).
package tools

import (
	_ "github.com/vmware-tanzu/velero/cmd/velero"
)
