/*
 * fb_protocol.h - firmware side of the vitals-edge wire protocol (see ../PROTOCOL.md).
 *
 * C99, no malloc, no stdio: every function works on caller-provided buffers,
 * so it fits an MCU with a few KB of RAM. Byte-identical to the Python codec
 * in firmware_bridge/ (checked by tests/test_fb_c_crosscheck.py on shared
 * vectors). Multi-byte fields are little-endian on the wire whatever the CPU.
 *
 * Variable-length parts are never copied: to encode, the caller points at its
 * own arrays (samples, vitals, channel table, text); decoded messages point
 * into the decoder's frame buffer and stay valid until the next feed.
 */
#ifndef FB_PROTOCOL_H
#define FB_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sizes ------------------------------------------------------------ */
#define FB_PROTOCOL_VERSION 1u
#define FB_HEADER_SIZE 16u
#define FB_CRC_SIZE 4u
#define FB_MIN_FRAME_SIZE (FB_HEADER_SIZE + FB_CRC_SIZE)            /* 20 */
#define FB_MAX_FRAME_SIZE 1024u                                     /* decoded */
#define FB_MAX_PAYLOAD_SIZE (FB_MAX_FRAME_SIZE - FB_MIN_FRAME_SIZE) /* 1004 */
#define FB_MAX_ENCODED_SIZE (FB_MAX_FRAME_SIZE + (FB_MAX_FRAME_SIZE + 253u) / 254u) /* 1029 */
#define FB_MAX_WIRE_SIZE (FB_MAX_ENCODED_SIZE + 1u) /* with the 0x00 delimiter */

#define FB_INVALID_INT16 (-32767 - 1)
#define FB_INVALID_INT24 (-8388607L - 1L)

/* Capacity of a decoded HELLO / VITALS (compile-time; frames beyond it are
 * reported as FB_ERR_CAPACITY, they are not malformed). */
#ifndef FB_MAX_STREAMS
#define FB_MAX_STREAMS 8u
#endif
#ifndef FB_MAX_CHANNELS
#define FB_MAX_CHANNELS 32u /* total over all streams */
#endif
#ifndef FB_MAX_VITALS
#define FB_MAX_VITALS 125u /* all that fit in one frame */
#endif
#define FB_MAX_TEXT 32u      /* channel name / unit bytes */
#define FB_MAX_LOG_TEXT 255u

/* ---- code tables (same numbers as constants.py / PROTOCOL.md) ---------- */
enum fb_msg_type {
    FB_MSG_HELLO = 0x01,
    FB_MSG_SAMPLES = 0x10,
    FB_MSG_VITALS = 0x11,
    FB_MSG_STATUS = 0x12,
    FB_MSG_LOG = 0x13,
    FB_MSG_TIME_SYNC_REQ = 0x20,
    FB_MSG_TIME_SYNC_RESP = 0x21,
    FB_MSG_ACK = 0x30,
    FB_MSG_NACK = 0x31,
    FB_MSG_WELCOME = 0x81
};

enum fb_flags { FB_FLAG_ACK_REQUESTED = 0x01, FB_FLAG_RETRANSMIT = 0x02 };
enum fb_sample_format { FB_FMT_INT16 = 1, FB_FMT_INT24 = 2 };
enum fb_vital_kind {
    FB_VITAL_HEART_RATE = 1, FB_VITAL_SPO2 = 2, FB_VITAL_RESP_RATE = 3,
    FB_VITAL_TEMPERATURE = 4, FB_VITAL_BP_SYSTOLIC = 5, FB_VITAL_BP_DIASTOLIC = 6,
    FB_VITAL_BP_MEAN = 7, FB_VITAL_PULSE_RATE = 8
};
enum fb_unit {
    FB_UNIT_PER_MIN = 1, FB_UNIT_PERCENT = 2, FB_UNIT_CEL = 3, FB_UNIT_DEGF = 4,
    FB_UNIT_MM_HG = 5, FB_UNIT_KPA = 6
};
enum fb_vital_flags { FB_VITAL_QUESTIONABLE = 0x01, FB_VITAL_CALIBRATING = 0x02 };
enum fb_contact { FB_CONTACT_UNKNOWN = 0, FB_CONTACT_GOOD = 1, FB_CONTACT_POOR = 2, FB_CONTACT_OFF = 3 };
enum fb_status_error {
    FB_STATUS_SENSOR_FAULT = 0x0001, FB_STATUS_LOW_BATTERY = 0x0002,
    FB_STATUS_SAMPLES_DROPPED = 0x0004, FB_STATUS_CLOCK_UNSYNCED = 0x0008,
    FB_STATUS_OVER_TEMPERATURE = 0x0010, FB_STATUS_STORAGE_FULL = 0x0020,
    FB_STATUS_WATCHDOG_RESET = 0x0040, FB_STATUS_CHARGING = 0x0080
};
enum fb_nack_reason {
    FB_NACK_NONE = 0, FB_NACK_BAD_VERSION = 1, FB_NACK_UNKNOWN_TYPE = 2,
    FB_NACK_MALFORMED_PAYLOAD = 3, FB_NACK_NOT_READY = 4, FB_NACK_BUSY = 5,
    FB_NACK_UNSUPPORTED = 6
};
enum fb_log_level { FB_LOG_DEBUG = 0, FB_LOG_INFO = 1, FB_LOG_WARN = 2, FB_LOG_ERROR = 3 };
enum fb_welcome_result { FB_WELCOME_OK = 0, FB_WELCOME_NO_COMMON_VERSION = 1, FB_WELCOME_REJECTED = 2 };
#define FB_BATTERY_UNKNOWN 255u

/* ---- results ------------------------------------------------------------ */
typedef enum {
    FB_OK = 0,
    FB_FRAME = 1,            /* fb_decoder_feed: a message was decoded */
    FB_ERR_ARG = -1,         /* bad argument / value out of range when encoding */
    FB_ERR_BUFFER = -2,      /* output buffer too small */
    FB_ERR_COBS = -3,
    FB_ERR_TOO_LONG = -4,
    FB_ERR_SHORT = -5,
    FB_ERR_CRC = -6,
    FB_ERR_VERSION = -7,
    FB_ERR_UNKNOWN_TYPE = -8, /* skipped and counted, not a fault */
    FB_ERR_PAYLOAD = -9,
    FB_ERR_CAPACITY = -10     /* well-formed, but exceeds this build's FB_MAX_* */
} fb_result;

/* ---- messages ----------------------------------------------------------- */
typedef struct {
    uint8_t version;        /* protocol version of this frame */
    uint8_t type;           /* enum fb_msg_type */
    uint8_t flags;          /* enum fb_flags */
    uint32_t seq;           /* sender's frame counter, +1 per frame, wraps mod 2^32 */
    uint64_t timestamp_us;  /* sender's monotonic clock, microseconds */
} fb_header;

typedef struct {
    float scale, offset;    /* physical = raw * scale + offset */
    const char *name;       /* UTF-8, not NUL-terminated */
    uint8_t name_len;       /* <= FB_MAX_TEXT */
    const char *unit;       /* UCUM, ASCII */
    uint8_t unit_len;       /* <= FB_MAX_TEXT */
} fb_channel;

typedef struct {
    uint8_t stream_id;
    uint8_t sample_format;  /* enum fb_sample_format */
    uint8_t n_channels;     /* >= 1; its channels follow the previous stream's in .channels */
    float sample_rate_hz;   /* finite, > 0 */
} fb_stream;

typedef struct {
    uint64_t device_id;
    uint8_t fw_major, fw_minor;
    uint16_t fw_patch;
    uint8_t proto_min, proto_max;
    uint8_t n_streams;
    const fb_stream *streams;    /* n_streams entries */
    const fb_channel *channels;  /* sum of n_channels entries, stream by stream */
} fb_hello;

typedef struct {
    uint8_t chosen_version;
    uint8_t result;              /* enum fb_welcome_result */
    uint64_t gateway_time_us;
} fb_welcome;

typedef struct {
    uint64_t first_sample_index; /* per-stream sample counter of the first sample */
    uint8_t stream_id;
    uint8_t sample_format;
    uint8_t n_channels;          /* >= 1 */
    uint16_t n_samples;          /* >= 1 */
    /* encode input, interleaved s0c0 s0c1 .. s1c0 ..: i16 for INT16, i32 for INT24 */
    const int16_t *i16;
    const int32_t *i32;
    /* decode output: the packed little-endian values inside the frame buffer;
     * also an encode input when the array for sample_format is NULL */
    const uint8_t *packed;
} fb_samples;

typedef struct {
    uint8_t kind;    /* enum fb_vital_kind */
    uint8_t unit;    /* enum fb_unit */
    uint8_t flags;   /* enum fb_vital_flags */
    float value;     /* NaN = not available */
} fb_vital;

typedef struct {
    uint8_t count;
    const fb_vital *items;
} fb_vitals;

typedef struct {
    uint8_t battery_percent; /* 0..100, FB_BATTERY_UNKNOWN */
    uint8_t contact;         /* enum fb_contact */
    uint16_t battery_mv;     /* 0 = unknown */
    uint32_t error_flags;    /* enum fb_status_error */
} fb_status;

typedef struct { uint64_t t1; } fb_time_sync_req;
typedef struct { uint64_t t1, t2, t3; } fb_time_sync_resp;

typedef struct {
    uint32_t acked_seq;
    uint8_t acked_type;
    uint8_t reason;          /* enum fb_nack_reason; 0 for ACK */
} fb_ack;

typedef struct {
    uint8_t level;           /* enum fb_log_level */
    uint8_t text_len;
    const char *text;        /* UTF-8, no patient data, not NUL-terminated */
} fb_log;

typedef struct {
    fb_header hdr;
    union {
        fb_hello hello;
        fb_welcome welcome;
        fb_samples samples;
        fb_vitals vitals;
        fb_status status;
        fb_time_sync_req time_sync_req;
        fb_time_sync_resp time_sync_resp;
        fb_ack ack;          /* ACK and NACK */
        fb_log log;
    } u;
} fb_message;

/* ---- building blocks ---------------------------------------------------- */

/* CRC-32C (Castagnoli, reflected, init/xorout 0xFFFFFFFF); check("123456789") = 0xE3069283.
 * Incremental: crc = fb_crc32c_update(FB_CRC32C_INIT, ...); ...; result = crc ^ FB_CRC32C_XOROUT. */
#define FB_CRC32C_INIT 0xFFFFFFFFu
#define FB_CRC32C_XOROUT 0xFFFFFFFFu
uint32_t fb_crc32c_update(uint32_t state, const uint8_t *data, size_t len);
uint32_t fb_crc32c(const uint8_t *data, size_t len);

/* COBS encode (minimal form, no delimiter). Returns the encoded length, 0 if cap is too small. */
size_t fb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
/* COBS decode one frame without its delimiter; FB_OK, FB_ERR_COBS or FB_ERR_BUFFER. */
fb_result fb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* ---- frames ------------------------------------------------------------- */

/* Encode msg (header + payload + CRC, COBS, trailing 0x00) into out.
 * msg->hdr.type selects the union member. Returns the wire length (>0) or a
 * negative fb_result (FB_ERR_ARG, FB_ERR_TOO_LONG, FB_ERR_BUFFER).
 * scratch must hold FB_MAX_FRAME_SIZE bytes (the frame before COBS); it may be
 * a static buffer shared by all senders on one thread. */
int fb_encode_frame(const fb_message *msg, uint8_t *scratch, uint8_t *out, size_t cap);

/* Parse a decoded frame (after COBS, CRC included). Variable-length parts
 * point into frame; HELLO's stream/channel arrays and VITALS items are written
 * to the caller's arrays (capacity FB_MAX_STREAMS / FB_MAX_CHANNELS / FB_MAX_VITALS).
 * Returns FB_OK or a negative fb_result. */
typedef struct {
    fb_stream streams[FB_MAX_STREAMS];
    fb_channel channels[FB_MAX_CHANNELS];
    fb_vital vitals[FB_MAX_VITALS];
} fb_parse_space;

fb_result fb_parse_frame(const uint8_t *frame, size_t len, fb_message *msg, fb_parse_space *space);

/* Value of one sample of a decoded SAMPLES message (sign-extended). */
int32_t fb_samples_value(const fb_samples *s, size_t sample, size_t channel);

/* ---- streaming decoder ---------------------------------------------------- */
typedef struct {
    uint32_t frames_ok, crc_errors, cobs_errors, too_long, short_frames;
    uint32_t unknown_type, bad_version, payload_errors, capacity_errors;
    uint32_t bytes_discarded;
} fb_stats;

typedef struct {
    uint8_t frame[FB_MAX_FRAME_SIZE]; /* COBS-decoded bytes of the frame in progress */
    uint16_t len;        /* decoded bytes so far */
    uint16_t raw_len;    /* encoded bytes so far (for bytes_discarded) */
    uint8_t block_left;  /* data bytes left in the current COBS block; 0 = next is a code */
    uint8_t zero_pending;/* previous block was < 0xFF: a 0x00 precedes the next block */
    uint8_t overflow;    /* frame too long: drop bytes until 0x00 */
    uint8_t version;     /* accepted protocol version (HELLO/WELCOME: any) */
    fb_stats stats;
    fb_parse_space space;
} fb_decoder;

void fb_decoder_init(fb_decoder *dec, uint8_t version);
/* Feed one received byte. Returns FB_FRAME when it completed a valid message
 * (written to *msg, valid until the next call), FB_OK when more bytes are
 * needed, or a negative fb_result when it ended a rejected frame (already
 * counted in dec->stats; the caller may ignore it: the decoder is resynchronised). */
int fb_decoder_feed(fb_decoder *dec, uint8_t byte, fb_message *msg);

#ifdef __cplusplus
}
#endif
#endif /* FB_PROTOCOL_H */
