package store

import (
	"context"
	"fmt"
)

// DeadLetterSuffix ends the description of the FEIL a message gets when its
// retries run out (the reference's text, which clients may match on).
const DeadLetterSuffix = " - Moved to DLQ"

// DeadLetters counts the messages in the store that ran out of retries:
// efm_queue_dead_letters. Deleting the conversation takes one off.
func (s *Store) DeadLetters(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT conv_id) FROM message_status
		WHERE status_code = (SELECT id FROM term WHERE value = 'FEIL') AND description LIKE ?`, "%"+DeadLetterSuffix).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting dead letters: %w", err)
	}
	return n, nil
}
