package dposim

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// Size limits of Altinn 3 Broker (its ApplicationConstants and Errors).
const (
	// DefaultMaxFileTransferSize is what the broker takes in one file
	// transfer of a resource that uses the virus scan, the default: the scan
	// reads at most 2 GiB. A resource's maxFileTransferSize may lower it.
	DefaultMaxFileTransferSize = 2 << 30
	// maxGlobalFileTransferSize is the highest maxFileTransferSize the
	// broker accepts for a resource without the virus scan (100 GiB).
	maxGlobalFileTransferSize = 100 << 30
	// memoryFile is the largest upload the simulator keeps in memory: the
	// receipts and small messages that make up nearly all traffic. Larger
	// files are spooled to Options.Dir, so a 1 GiB transfer costs disk, not
	// the memory of the process the simulator shares with a daemon.
	memoryFile = 4 << 20
)

// ScopeServiceOwner is the scope of the resource configuration endpoints.
const ScopeServiceOwner = "altinn:serviceowner"

// Resource is a broker resource's configuration, as PUT and GET
// /resource/{resourceId} carry it (ResourceExt).
type Resource struct {
	// MaxFileTransferSize caps a file transfer in bytes; 0 (null) means the
	// broker's own cap, DefaultMaxFileTransferSize.
	MaxFileTransferSize int64 `json:"maxFileTransferSize,omitempty"`
	// DisableVirusScan lifts the 2 GiB cap of the scan (the real broker
	// allows it only for resources Altinn approved); not part of ResourceExt.
	DisableVirusScan bool `json:"-"`
}

// limit is the largest file a transfer of the resource may carry.
func (r Resource) limit() int64 {
	l := int64(maxGlobalFileTransferSize)
	if !r.DisableVirusScan {
		l = DefaultMaxFileTransferSize
	}
	if r.MaxFileTransferSize > 0 {
		l = min(l, r.MaxFileTransferSize)
	}
	return l
}

// check applies the broker's rules for a resource configuration.
func (r Resource) check() error {
	switch {
	case r.MaxFileTransferSize < 0:
		return errors.New("Max file transfer size cannot be negative")
	case r.MaxFileTransferSize > maxGlobalFileTransferSize:
		return errors.New("Max file transfer size cannot be set higher than 100GB in production because it has not yet been tested for it. Contact us @ Slack if you need it.")
	case r.MaxFileTransferSize > DefaultMaxFileTransferSize && !r.DisableVirusScan:
		return errors.New("Max file transfer size cannot be set higher than the 2GB in production unless the resource has been pre-approved for disabled virus scan. Contact us @ Slack.")
	}
	return nil
}

// SetResource configures a resource, as its service owner would with PUT
// /resource/{resourceId}; the resource is then one the broker serves.
func (s *Sim) SetResource(id string, r Resource) error {
	if err := r.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resources[id] = r
	return nil
}

func (s *Sim) resourceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT "+BasePath+"/resource/{resourceId}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.auth(w, r, ScopeServiceOwner); !ok {
			return
		}
		var body struct {
			MaxFileTransferSize *int64 `json:"maxFileTransferSize"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
			problem(w, http.StatusBadRequest, "Bad Request", "body is not a resource configuration")
			return
		}
		id := r.PathValue("resourceId")
		s.mu.Lock()
		res := s.resources[id]
		s.mu.Unlock()
		if body.MaxFileTransferSize != nil {
			if *body.MaxFileTransferSize == 0 {
				problem(w, http.StatusBadRequest, "Bad Request", "Max file transfer size cannot be zero")
				return
			}
			res.MaxFileTransferSize = *body.MaxFileTransferSize
		}
		if err := s.SetResource(id, res); err != nil {
			problem(w, http.StatusBadRequest, "Bad Request", err.Error())
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET "+BasePath+"/resource/{resourceId}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.auth(w, r, ScopeServiceOwner); !ok {
			return
		}
		s.mu.Lock()
		res, ok := s.resources[r.PathValue("resourceId")]
		s.mu.Unlock()
		if !ok {
			problem(w, http.StatusForbidden, "Forbidden",
				"The resource needs to be registered as an Altinn 3 resource and it has to be associated with a service owner")
			return
		}
		out := map[string]any{"maxFileTransferSize": nil}
		if res.MaxFileTransferSize > 0 {
			out["maxFileTransferSize"] = res.MaxFileTransferSize
		}
		writeJSON(w, out)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// blob is an uploaded file: in memory when small, else a file in Options.Dir.
type blob struct {
	data []byte
	path string
	size int64
}

// readerAt is an open blob.
type readerAt interface {
	io.ReaderAt
	io.Closer
}

type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

// open gives the blob's bytes; the handle stays valid after remove.
func (b *blob) open() (readerAt, error) {
	if b.path == "" {
		return memReader{bytes.NewReader(b.data)}, nil
	}
	return os.Open(b.path)
}

// remove frees the blob; open handles keep reading what they had.
func (b *blob) remove() {
	if b.path != "" {
		_ = os.Remove(b.path)
	}
	b.data, b.path = nil, ""
}

// receive reads exactly n bytes of r into a blob and its MD5 checksum (the
// broker's fileTransfer checksum). A short body is an error and leaves
// nothing behind.
func (s *Sim) receive(r io.Reader, n int64) (*blob, string, error) {
	h := md5.New()
	if n <= memoryFile {
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, "", err
		}
		h.Write(data)
		return &blob{data: data, size: n}, hex.EncodeToString(h.Sum(nil)), nil
	}
	f, err := os.CreateTemp(s.opts.Dir, "dposim-*.zip")
	if err != nil {
		return nil, "", fmt.Errorf("spooling upload: %w", err)
	}
	got, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, n))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && got != n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, "", err
	}
	return &blob{path: f.Name(), size: n}, hex.EncodeToString(h.Sum(nil)), nil
}

// memBlob wraps bytes the simulator made itself (its peers' answers).
func memBlob(data []byte) (*blob, string) {
	sum := md5.Sum(data)
	return &blob{data: data, size: int64(len(data))}, hex.EncodeToString(sum[:])
}

// fileSizeTooBig is the broker's answer to an upload over the resource's
// cap (Errors.FileSizeTooBig), given from the Content-Length before any of
// the body is read.
func fileSizeTooBig(w http.ResponseWriter) {
	problem(w, http.StatusBadRequest, "Bad Request", "File size exceeds maximum")
}

// contentLengthRequired is the broker's answer to an upload without a
// Content-Length: ASP.NET's Problem(detail) with its default status 500.
func contentLengthRequired(w http.ResponseWriter) {
	problem(w, http.StatusInternalServerError, "An error occurred while processing your request.", "Content-length header is required")
}
