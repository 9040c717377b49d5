package decode
import ("testing";"os";"path/filepath";"strings";"gocv.io/x/gocv")
func TestScratchConv(t *testing.T){
 if os.Getenv("SCRATCH")==""{t.Skip()}
 for _,f:=range strings.Fields(os.Getenv("FILES")){
  m:=gocv.IMRead(filepath.Join(samplesDir,f), gocv.IMReadColor)
  gocv.IMWrite("/tmp/png/"+strings.ReplaceAll(strings.ReplaceAll(f,"/","_"),"#","")+".png", m); m.Close()
 }
}
