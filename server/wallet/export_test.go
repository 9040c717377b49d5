package wallet

// SetMaxLoginFails lowers the bound on the login locks remembered in
// memory, so a test can reach it without 100 000 bcrypt comparisons.
func (s *Service) SetMaxLoginFails(n int) {
	s.loginMu.Lock()
	s.maxLoginFails = n
	s.loginMu.Unlock()
}
