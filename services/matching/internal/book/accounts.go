package book

// accountList links an account's open orders in acceptance order, so
// CancelAll and AccountOrders cost O(orders of the account) and visit
// orders in the same order on a live book and on a restored one.
type accountList struct {
	head, tail orderRef
	count      int32
}

// accountKey shifts account ids by one because the hash table reserves
// key zero and account 0 is a valid account.
func accountKey(account uint32) uint64 { return uint64(account) + 1 }

// linkAccount appends an order to its account's list. Orders are linked
// when they first become open, in increasing acceptSeq, so appending
// keeps the list sorted by acceptance.
func (b *Book) linkAccount(r orderRef) {
	o := &b.orders[r]
	key := accountKey(o.account)
	l := b.accounts.find(key)
	if l == nil {
		l = b.accounts.put(key, accountList{})
	}
	o.accNext = 0
	o.accPrev = l.tail
	if l.tail != 0 {
		b.orders[l.tail].accNext = r
	} else {
		l.head = r
	}
	l.tail = r
	l.count++
}

func (b *Book) unlinkAccount(r orderRef) {
	o := &b.orders[r]
	key := accountKey(o.account)
	l := b.accounts.find(key)
	if l == nil {
		return
	}
	if o.accPrev != 0 {
		b.orders[o.accPrev].accNext = o.accNext
	} else {
		l.head = o.accNext
	}
	if o.accNext != 0 {
		b.orders[o.accNext].accPrev = o.accPrev
	} else {
		l.tail = o.accPrev
	}
	o.accPrev, o.accNext = 0, 0
	l.count--
	if l.count == 0 {
		b.accounts.remove(key)
	}
}
