#ifndef CAMPUSPAY_WECHAT_H
#define CAMPUSPAY_WECHAT_H

#ifdef __cplusplus
extern "C" {
#endif

typedef void *WeChatQR;

// WeChatQR_New returns a detector without CNN models (OpenCV falls back to
// its traditional detector), or NULL on failure.
WeChatQR WeChatQR_New(void);
void WeChatQR_Close(WeChatQR d);

// WeChatQR_Decode decodes an 8-bit gray or BGR image of rows x cols pixels
// with the given row stride. It returns the number of codes read (-1 on an
// OpenCV exception); *out receives their texts back to back, each ended by
// a NUL byte, in one malloc'd block of *outLen bytes that the caller frees.
int WeChatQR_Decode(WeChatQR d, const unsigned char *data, int rows, int cols,
                    int channels, long step, char **out, int *outLen);

#ifdef __cplusplus
}
#endif

#endif
