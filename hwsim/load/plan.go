package load

import (
	"fmt"

	banksim "campuspay/hwsim/bank"
)

// plan is the input of `authorizer provision` (its ProvisionPlan).
type plan struct {
	Password string `json:"password"`
	Merchant struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Campus string `json:"campus"`
	} `json:"merchant"`
	Terminals  []string  `json:"terminals"`
	Students   []student `json:"students"`
	TopUp      int64     `json:"top_up"`
	LimitPerTx int64     `json:"limit_per_tx"`
	LimitDaily int64     `json:"limit_daily"`
}

type student struct {
	StudentNo string `json:"student_no"`
	Name      string `json:"name"`
	IDNumber  string `json:"id_number"`
	Phone     string `json:"phone"`
	Campus    string `json:"campus"`
	BankCode  string `json:"bank_code"`
	BankCard  string `json:"bank_card"`
}

// newPlan makes n synthetic students with cards at CCB and t POS terminals.
func newPlan(n, t int, topUp int64) *plan {
	p := &plan{Password: "load-test-only", TopUp: topUp}
	p.Merchant.ID, p.Merchant.Name, p.Merchant.Campus = merchantID, "负载测试食堂", "main"
	for i := range t {
		p.Terminals = append(p.Terminals, fmt.Sprintf("L-T%05d", i+1))
	}
	for i := range n {
		p.Students = append(p.Students, student{StudentNo: fmt.Sprintf("L%07d", i+1), Name: fmt.Sprintf("负载%d", i+1),
			IDNumber: idNumber(fmt.Sprintf("3301062004%07d", i)), Phone: fmt.Sprintf("138%08d", i),
			Campus: "main", BankCode: "CCB", BankCard: banksim.LuhnComplete(fmt.Sprintf("62170%010d", i))})
	}
	return p
}

// idNumber completes 17 digits with the GB 11643 check character.
func idNumber(first17 string) string {
	w := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * w[i]
	}
	return first17 + string("10X98765432"[sum%11])
}
