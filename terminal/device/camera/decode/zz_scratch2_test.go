package decode
import ("testing";"os";"fmt";"time";"path/filepath";"gocv.io/x/gocv")
func TestScratchPipe(t *testing.T){
 if os.Getenv("SCRATCH")==""{t.Skip()}
 d:=New(Options{}); defer d.Close()
 for _, set := range []string{"qrcode-1", "qrcode-2", "qrcode-3", "code128-1"} {
  n,p,tot:=0,0,0
  var dur time.Duration
  for _, s := range loadSamples(t, set) {
   m := gocv.IMRead(s.path, gocv.IMReadGrayScale)
   buf,_:=m.DataPtrUint8()
   pl,_:=Plain(buf,m.Cols(),m.Rows())
   t0:=time.Now()
   got,_:=d.Decode(m)
   el:=time.Since(t0); dur+=el
   m.Close()
   tot++
   if matches(got,s.want){n++} else {fmt.Printf("miss %s %q\n", filepath.Base(s.path), got)}
   if matches(pl,s.want){p++}
   if el>200*time.Millisecond {fmt.Printf("slow %s %v\n", filepath.Base(s.path), el)}
  }
  fmt.Printf("%s plain %d pipeline %d / %d  avg %v\n", set,p,n,tot,dur/time.Duration(tot))
 }
}
