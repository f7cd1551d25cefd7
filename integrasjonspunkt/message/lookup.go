package message

import (
	"context"
	"fmt"

	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// OutgoingByConversation returns the messageId of our outgoing message on
// service in conversation conversationID: channels whose receipts name the
// conversation, not the message (DPI, channels.md §4.6), find it here.
// ErrUnknownMessage when there is none.
func (s *Service) OutgoingByConversation(ctx context.Context, conversationID, service string) (string, error) {
	cs, _, err := s.st.ListConversations(ctx, store.ConversationFilter{ConversationID: conversationID, Direction: Outgoing,
		Service: service}, store.Page{Size: 1, NoTotal: true})
	if err != nil {
		return "", err
	}
	if len(cs) == 0 {
		return "", fmt.Errorf("%w in conversation %s", ErrUnknownMessage, conversationID)
	}
	return cs[0].MessageID, nil
}
