package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// Paging limits of local-api.md §2.6.
const (
	defaultPageSize = 10
	maxPageSize     = 2000
)

// pageRequest reads page, size and sort (§2.6); def is the resource's
// default sort, used when the request names none.
func pageRequest(q url.Values, def []store.Order) store.Page {
	p := store.Page{Size: defaultPageSize}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		p.Number = n
	}
	if n, err := strconv.Atoi(q.Get("size")); err == nil && n >= 1 {
		p.Size = min(n, maxPageSize)
	}
	for _, s := range q["sort"] {
		parts := strings.Split(s, ",")
		desc := false
		if last := strings.ToLower(strings.TrimSpace(parts[len(parts)-1])); len(parts) > 1 && (last == "asc" || last == "desc") {
			desc = last == "desc"
			parts = parts[:len(parts)-1]
		}
		for _, prop := range parts {
			if prop = strings.TrimSpace(prop); prop != "" {
				p.Sort = append(p.Sort, store.Order{Property: prop, Desc: desc})
			}
		}
	}
	if len(p.Sort) == 0 {
		p.Sort = def
	}
	return p
}

type sortJSON struct {
	Empty    bool `json:"empty"`
	Sorted   bool `json:"sorted"`
	Unsorted bool `json:"unsorted"`
}

type pageableJSON struct {
	PageNumber int      `json:"pageNumber"`
	PageSize   int      `json:"pageSize"`
	Sort       sortJSON `json:"sort"`
	Offset     int      `json:"offset"`
	Paged      bool     `json:"paged"`
	Unpaged    bool     `json:"unpaged"`
}

// pageJSON is the Spring Data page every list answers with; every key is
// always present (§2.6).
type pageJSON[T any] struct {
	Content          []T          `json:"content"`
	Pageable         pageableJSON `json:"pageable"`
	Last             bool         `json:"last"`
	TotalElements    int          `json:"totalElements"`
	TotalPages       int          `json:"totalPages"`
	Size             int          `json:"size"`
	Number           int          `json:"number"`
	Sort             sortJSON     `json:"sort"`
	First            bool         `json:"first"`
	NumberOfElements int          `json:"numberOfElements"`
	Empty            bool         `json:"empty"`
}

func newPage[T any](content []T, p store.Page, total int) pageJSON[T] {
	if content == nil {
		content = []T{}
	}
	sorted := len(p.Sort) > 0
	st := sortJSON{Empty: !sorted, Sorted: sorted, Unsorted: !sorted}
	pages := (total + p.Size - 1) / p.Size
	return pageJSON[T]{
		Content:          content,
		Pageable:         pageableJSON{PageNumber: p.Number, PageSize: p.Size, Sort: st, Offset: p.Number * p.Size, Paged: true},
		Last:             p.Number+1 >= pages,
		TotalElements:    total,
		TotalPages:       pages,
		Size:             p.Size,
		Number:           p.Number,
		Sort:             st,
		First:            p.Number == 0,
		NumberOfElements: len(content),
		Empty:            len(content) == 0,
	}
}

func writePage[T any](w http.ResponseWriter, content []T, p store.Page, total int) {
	writeJSON(w, http.StatusOK, newPage(content, p, total))
}
