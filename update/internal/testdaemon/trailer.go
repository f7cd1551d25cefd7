package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
)

// trailer is the variant description the tests append to the executable:
// JSON, then its length as 8 decimal digits, then magic.
type trailer struct {
	Version  string `json:"version"`
	Health   string `json:"health"`
	SelfTest string `json:"selftest"`
}

// magic ends an executable that carries a trailer.
const magic = "EFMTEST!"

var errNoTrailer = errors.New("no trailer")

func readTrailer() (trailer, error) {
	var t trailer
	exe, err := os.Executable()
	if err != nil {
		return t, err
	}
	f, err := os.Open(exe)
	if err != nil {
		return t, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return t, err
	}
	tail := make([]byte, 8+len(magic))
	if fi.Size() < int64(len(tail)) {
		return t, errNoTrailer
	}
	if _, err := f.ReadAt(tail, fi.Size()-int64(len(tail))); err != nil && !errors.Is(err, io.EOF) {
		return t, err
	}
	if string(tail[8:]) != magic {
		return t, errNoTrailer
	}
	n, err := strconv.Atoi(string(tail[:8]))
	if err != nil || n <= 0 || int64(n) > fi.Size() {
		return t, errNoTrailer
	}
	j := make([]byte, n)
	if _, err := f.ReadAt(j, fi.Size()-int64(len(tail))-int64(n)); err != nil {
		return t, err
	}
	return t, json.Unmarshal(j, &t)
}
