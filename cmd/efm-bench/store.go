package main

import "errors"

// rowStore is rows 7, 8 and 9; it needs integrasjonspunkt/store/storegen.
func rowStore(e *env) ([]measure, error) {
	return nil, errors.New("rows 7-9 need integrasjonspunkt/store/storegen, not merged yet")
}
