package postgres

// WithBeforeBatch sets the test hook run when the writer has taken the
// first write of a batch.
func WithBeforeBatch(o Options, f func()) Options { o.beforeBatch = f; return o }

// Queued reports how many writes wait for the writer.
func (s *Store) Queued() int { return s.queued() }
