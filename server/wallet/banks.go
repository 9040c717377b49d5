package wallet

// Bank is a bank whose cards the campus accepts for binding (rule 1), as
// the app shows it.
type Bank struct {
	Code   string `json:"code"`
	NameZH string `json:"name_zh"`
	NameEN string `json:"name_en"`
}

// bankNames are the names of the banks a campus usually accepts; a code
// not listed is shown as itself.
var bankNames = map[string][2]string{
	"CCB":   {"中国建设银行", "China Construction Bank"},
	"ICBC":  {"中国工商银行", "Industrial and Commercial Bank of China"},
	"ABC":   {"中国农业银行", "Agricultural Bank of China"},
	"BOC":   {"中国银行", "Bank of China"},
	"BOCOM": {"交通银行", "Bank of Communications"},
	"PSBC":  {"中国邮政储蓄银行", "Postal Savings Bank of China"},
	"CMB":   {"招商银行", "China Merchants Bank"},
	"CIB":   {"兴业银行", "Industrial Bank"},
	"CITIC": {"中信银行", "China CITIC Bank"},
	"SPDB":  {"浦发银行", "Shanghai Pudong Development Bank"},
	"CEB":   {"中国光大银行", "China Everbright Bank"},
	"CMBC":  {"中国民生银行", "China Minsheng Bank"},
}

// Banks lists the banks accepted for binding, in the configured order:
// the app offers exactly these (a list of its own would offer banks the
// authorizer then refuses, and hide ones it accepts).
func (s *Service) Banks() []Bank {
	out := make([]Bank, 0, len(s.cfg.SupportedBanks))
	for _, c := range s.cfg.SupportedBanks {
		b := Bank{Code: c, NameZH: c, NameEN: c}
		if n, ok := bankNames[c]; ok {
			b.NameZH, b.NameEN = n[0], n[1]
		}
		out = append(out, b)
	}
	return out
}
