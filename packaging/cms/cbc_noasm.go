//go:build !amd64 || purego

package cms

import "crypto/cipher"

func newCBCAsm(key, iv []byte, decrypt bool) cipher.BlockMode { return nil }
