package wallet

// SetMaxLoginFails lowers the bound on remembered failed logins, so a test
// can reach it without 100 000 bcrypt comparisons.
func (s *Service) SetMaxLoginFails(n int) {
	s.loginMu.Lock()
	s.maxLoginFails = n
	s.loginMu.Unlock()
}
