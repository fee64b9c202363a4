package exchange

// A client order id stays taken for the id window after its order closes, however many orders
// close meanwhile: the full record of a closed order is kept for the Retain most recent ones (for
// GetOrder), and past those only its key, close time and id (about 130 bytes with short ids), up to
// IDCap keys per symbol. Eviction runs in close(), on journal time, so replay rebuilds the same
// set; a repeat is compared with the wall clock at Submit, so a quiet symbol frees an id on time too.

// goneID is a closed order whose record was dropped but whose client id is still taken.
type goneID struct {
	key      string
	id       uint64
	closedAt int64
}

// noteClosed records a close time; m.mu is held.
func (m *market) noteClosed(o *Order) { m.closedAt[o.ID] = o.Updated }

// expiredClient reports whether id's order closed before the window that ends at now; m.mu is held.
func (m *market) expiredClient(id uint64, now int64) bool {
	at, ok := m.closedAt[id]
	return ok && m.window > 0 && at <= now-m.window
}

// forgetRecord drops a closed order's record beyond the Retain most recent and keeps its client
// id taken; m.mu is held.
func (m *market) forgetRecord(old *Order) {
	delete(m.orders, old.ID)
	key := clientKey(old.Account, old.ClientOrderID)
	if m.clientIDs[key] != old.ID {
		delete(m.closedAt, old.ID) // a newer order took the id after the window
		return
	}
	m.gone = append(m.gone, goneID{key: key, id: old.ID, closedAt: old.Updated})
}

// pruneGone frees the client ids whose window ended by now, and the oldest beyond the cap; m.mu
// is held.
func (m *market) pruneGone(now int64) {
	for m.goneHd < len(m.gone) {
		g := &m.gone[m.goneHd]
		if len(m.gone)-m.goneHd <= m.idCap && (m.window <= 0 || g.closedAt > now-m.window) {
			break
		}
		if m.clientIDs[g.key] == g.id {
			delete(m.clientIDs, g.key)
		}
		delete(m.closedAt, g.id)
		*g = goneID{}
		m.goneHd++
	}
	if m.goneHd > 4096 && m.goneHd*2 > len(m.gone) {
		m.gone = append(m.gone[:0], m.gone[m.goneHd:]...)
		m.goneHd = 0
	}
}
