//go:build !unix

package stdiojson

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
