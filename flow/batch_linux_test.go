//go:build linux

package flow

const batchOS = true
