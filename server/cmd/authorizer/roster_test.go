package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet/wallettest"
)

// Issue 13 item 10: lines of one file sharing a student number (or a card)
// are errors, every one of them, and none is imported: merging them gave
// one person's wallet another's name, ID, card and password. Unchanged
// rows are reported unchanged; the campus may be given by its name; each
// line's error is in Chinese and English.
func TestRosterImportDuplicates(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, append([]string{"--data", dir, "--config", cfg}, args...)...)
	}
	id := wallettest.IDNumber
	rows := []string{
		"学号,姓名,身份证号,手机号,类别,校区,卡号,初始密码",
		"20260101,张三," + id("11010520000101101") + ",13800000101,本科生,yungu,CB0001,first-pw",
		"20260102,李四," + id("11010520000101102") + ",13800000102,本科生,云谷,CB0002,pw2",
		"20260101,王五," + id("11010520000101103") + ",13800000103,本科生,yungu,CB0003,second-pw",
		"20260105,赵六," + id("11010520000101105") + ",13800000105,本科生,主校区,cb0006,pw5",
		"20260106,孙七," + id("11010520000101106") + ",13800000106,本科生,main,CB0006,pw6",
	}
	f := filepath.Join(dir, "roster.csv")
	write := func() { os.WriteFile(f, []byte(strings.Join(rows, "\n")+"\n"), 0o600) }
	write()
	code, out, errs := cli("roster", "import", f)
	if code != 1 || !strings.Contains(out, "done: 5 lines: 1 new, 0 updated, 0 unchanged, 4 errors") {
		t.Fatalf("import: exit %d, %q", code, out)
	}
	for _, want := range []string{
		"line 2: 20260101: 文件中有重复的学号或卡号，所涉各行均未导入 / The student number or card appears on more than one line of the file; none of those lines was imported (学号 20260101 也在第 4 行 / student number 20260101 also on line 4)",
		"line 4: 20260101: 文件中有重复的学号或卡号，所涉各行均未导入 / ",
		"(学号 20260101 也在第 2 行 / student number 20260101 also on line 2)",
		"line 5: 20260105: 文件中有重复的学号或卡号，所涉各行均未导入 / ",
		"(卡号 CB0006 也在第 6 行 / card CB0006 also on line 5",
	} {
		want = strings.Replace(want, "also on line 5", "also on line 6", 1)
		if !strings.Contains(errs, want) {
			t.Errorf("import errors\n%s\nlack %q", errs, want)
		}
	}
	if strings.Count(errs, "\n") != 4 {
		t.Errorf("want 4 error lines:\n%s", errs)
	}
	m, err := Open(Options{Data: dir, ConfigPath: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, pw := range []string{"first-pw", "second-pw"} {
		if _, err := m.Svc.Login(ctx, "20260101", pw); !errors.Is(err, protocol.ErrLoginFailed) {
			t.Errorf("login as the duplicated number with %q: %v", pw, err)
		}
	}
	if u, err := m.Store.UserByStudentNo(ctx, "20260102"); err != nil || u.Campus != "yungu" {
		t.Fatalf("campus given by name: %+v %v", u, err)
	}
	m.Close()

	// The school fixes the file: the first 20260101 stays, the card of
	// 20260106 is corrected. A re-import reports the unchanged row as such.
	rows[3] = "20260103,王五," + id("11010520000101103") + ",13800000103,本科生,yungu,CB0003,second-pw"
	rows[5] = "20260106,孙七," + id("11010520000101106") + ",13800000106,本科生,main,CB0007,pw6"
	write()
	if code, out, errs := cli("roster", "import", f); code != 0 || !strings.Contains(out, "done: 5 lines: 4 new, 0 updated, 1 unchanged, 0 errors") {
		t.Fatalf("fixed import: exit %d, %q %q", code, out, errs)
	}
	rows[2] = "20260102,李四," + id("11010520000101102") + ",13900000102,本科生,yungu,CB0002,pw2" // new phone
	write()
	if code, out, errs := cli("roster", "import", f); code != 0 || !strings.Contains(out, "done: 5 lines: 0 new, 1 updated, 4 unchanged, 0 errors") {
		t.Fatalf("re-import: exit %d, %q %q", code, out, errs)
	}
	m, err = Open(Options{Data: dir, ConfigPath: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Svc.Login(ctx, "20260101", "first-pw"); err != nil {
		t.Fatalf("login after the fix: %v", err)
	}
	// Item 6: the data folder keeps the field key (0600) beside the other
	// keys, and the database files no ID or phone number in clear.
	if fi, err := os.Stat(filepath.Join(dir, "wallet-fields.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("wallet-fields.key: %v %v", fi, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "wallet.db*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, v := range []string{id("11010520000101101"), "13800000101", "13900000102"} {
			if strings.Contains(string(b), v) {
				t.Errorf("%s holds %s in clear", filepath.Base(f), v)
			}
		}
	}
}
