package console

// DefaultFontPath is the font of the printed placards: WenQuanYi Micro Hei
// (Debian's fonts-wqy-microhei, installed by scripts/deps.sh), which has
// the Chinese glyphs.
const DefaultFontPath = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
