#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/wechat_qrcode.hpp>

#include "wechat.h"

WeChatQR WeChatQR_New(void) {
    try {
        return new cv::wechat_qrcode::WeChatQRCode();
    } catch (...) {
        return nullptr;
    }
}

void WeChatQR_Close(WeChatQR d) {
    delete static_cast<cv::wechat_qrcode::WeChatQRCode *>(d);
}

int WeChatQR_Decode(WeChatQR d, const unsigned char *data, int rows, int cols,
                    int channels, long step, char **out, int *outLen) {
    *out = nullptr;
    *outLen = 0;
    try {
        // A header over the caller's pixels: no copy, nothing kept.
        cv::Mat img(rows, cols, channels == 3 ? CV_8UC3 : CV_8UC1,
                    const_cast<unsigned char *>(data), (size_t)step);
        std::vector<std::string> texts =
            static_cast<cv::wechat_qrcode::WeChatQRCode *>(d)->detectAndDecode(img);
        size_t n = 0;
        for (const auto &t : texts) n += t.size() + 1;
        if (n == 0) return 0;
        char *buf = static_cast<char *>(std::malloc(n));
        if (buf == nullptr) return -1;
        char *p = buf;
        for (const auto &t : texts) {
            std::memcpy(p, t.data(), t.size());
            p += t.size();
            *p++ = '\0';
        }
        *out = buf;
        *outLen = (int)n;
        return (int)texts.size();
    } catch (...) {
        return -1;
    }
}
