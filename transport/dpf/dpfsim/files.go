package dpfsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/efm-go/efm/packaging/cms"
)

// SvarUt's size rules, from KS's own schema (forsendelse-send-api-v3.json,
// OrganisasjonForsendelse.dokumenter): "Total filstørrelse inntil 350 MB er
// støttet dersom forsendelsen skal kunne gå til print". A shipment that may
// be printed (kunDigitalLevering false, the default, and every SOAP V9
// shipment without kunDigitalLevering) is refused over it. KS documents no
// cap for digital-only delivery: the simulator's own guard there is
// Options.MaxShipment, above the daemon's 1 GB (channels.md §1.5).
const (
	PrintLimit         = 350 << 20
	DefaultMaxShipment = 2 << 30
	// memoryDocument: documents up to this stay in memory, larger ones are
	// spooled to Options.Dir, so a big shipment costs disk, not memory.
	memoryDocument = 4 << 20
	// cmsOverhead bounds what encryption adds to one document (envelope,
	// recipient info, padding), so the encrypted bytes are refused early
	// only when their content must be over the limit.
	cmsOverhead = 64 << 10
)

// errTooLarge is a shipment over the rule that applies to it.
type errTooLarge struct{ limit int64 }

func (e errTooLarge) Error() string {
	if e.limit == PrintLimit {
		return "Total filstørrelse må være under 350 MB dersom forsendelsen skal kunne gå til print"
	}
	return fmt.Sprintf("Total filstørrelse kan ikke overstige %d MB", e.limit>>20)
}

// blob is a document's bytes: in memory when small, else a file in Dir.
type blob struct {
	data []byte
	path string
	size int64
}

func (b blob) open() (io.ReadCloser, error) {
	if b.path == "" {
		return io.NopCloser(bytes.NewReader(b.data)), nil
	}
	return os.Open(b.path)
}

func (b *blob) remove() {
	if b.path != "" {
		_ = os.Remove(b.path)
	}
	b.data, b.path = nil, ""
}

// spool reads r into a blob of at most budget bytes; more is errTooLarge
// (limit) and leaves nothing behind. sum, when not nil, hashes what was read.
func (s *Sim) spool(r io.Reader, budget, limit int64, sum io.Writer) (blob, error) {
	if sum != nil {
		r = io.TeeReader(r, sum)
	}
	head := make([]byte, min(budget, memoryDocument)+1)
	n, err := io.ReadFull(r, head)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return blob{data: head[:n], size: int64(n)}, nil
	case err != nil:
		return blob{}, err
	case int64(n) > budget:
		return blob{}, errTooLarge{limit}
	}
	f, err := os.CreateTemp(s.opts.Dir, "dpfsim-*")
	if err != nil {
		return blob{}, fmt.Errorf("spooling document: %w", err)
	}
	if _, err = f.Write(head); err == nil {
		var got int64
		got, err = io.Copy(f, io.LimitReader(r, budget-int64(n)+1))
		if err == nil && int64(n)+got > budget {
			err = errTooLarge{limit}
		}
		n += int(got)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return blob{}, err
	}
	return blob{path: f.Name(), size: int64(n)}, nil
}

// budget is what the documents of one shipment may take in total.
func (s *Sim) budget(kunDigital bool) int64 {
	if kunDigital {
		return s.opts.MaxShipment
	}
	return PrintLimit
}

// decryptAll decrypts every document with SvarUt's key, from disk to disk
// for big ones, and applies the total size rule to the content. A document
// that does not decrypt, or a shipment over the rule, refuses the whole
// shipment and removes what it spooled.
func (s *Sim) decryptAll(files []Document, kryptert bool, limit int64) (err error) {
	defer func() {
		if err != nil {
			removeAll(files)
		}
	}()
	var total int64
	for i := range files {
		d := &files[i]
		if d.body.size == 0 {
			return fmt.Errorf("Kan ikke lagre tomt dokument %s", d.Filnavn)
		}
		if !kryptert {
			if total += d.body.size; total > limit {
				return errTooLarge{limit}
			}
			d.Size = int(d.body.size)
			if d.SHA256 == "" {
				d.SHA256 = hashBlob(d.body)
			}
			continue
		}
		in, err := d.body.open()
		if err != nil {
			return err
		}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := cms.Decrypt(pw, in, s.opts.Key, cms.DecryptOptions{Cert: s.opts.Cert, MaxSize: limit - total + cmsOverhead})
			pw.CloseWithError(err)
			done <- err
		}()
		h := sha256.New()
		plain, serr := s.spool(pr, limit-total, limit, h)
		pr.CloseWithError(errors.New("stopped"))
		derr := <-done
		in.Close()
		var tl errTooLarge
		switch {
		case errors.As(serr, &tl):
			return serr
		case derr != nil || serr != nil:
			plain.remove()
			return fmt.Errorf("Feil under lesing av %s: dokumentet dekrypteres ikke med SvarUts nøkkel", d.Filnavn)
		}
		d.body.remove()
		d.body, d.Size, d.SHA256 = plain, int(plain.size), hex.EncodeToString(h.Sum(nil))
		total += plain.size
	}
	return nil
}

func hashBlob(b blob) string {
	h := sha256.New()
	if rc, err := b.open(); err == nil {
		_, _ = io.Copy(h, rc)
		rc.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}

func removeAll(files []Document) {
	for i := range files {
		files[i].body.remove()
	}
}

// Close removes the documents the simulator spooled to disk.
func (s *Sim) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}
