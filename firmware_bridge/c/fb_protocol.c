/*
 * fb_protocol.c - see fb_protocol.h and ../PROTOCOL.md.
 * C99, no malloc, no stdio, no libm. Endianness-independent (byte-wise LE).
 */
#include "fb_protocol.h"

#include <string.h>

/* ---- little-endian helpers ------------------------------------------------ */
static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void put_u64(uint8_t *p, uint64_t v) { put_u32(p, (uint32_t)v); put_u32(p + 4, (uint32_t)(v >> 32)); }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static void put_f32(uint8_t *p, float f) { put_u32(p, f32_bits(f)); }

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32); }
static float get_f32(const uint8_t *p) { return bits_f32(get_u32(p)); }

static int f32_finite(float f) { return ((f32_bits(f) >> 23) & 0xFFu) != 0xFFu; }
static int f32_positive(float f)
{
    uint32_t u = f32_bits(f);
    return f32_finite(f) && !(u & 0x80000000u) && u != 0u;
}

/* ---- CRC-32C: 16-entry nibble table (64 bytes of flash, 2 lookups per byte) */
static const uint32_t crc32c_nibble[16] = {
    0x00000000u, 0x105EC76Fu, 0x20BD8EDEu, 0x30E349B1u, 0x417B1DBCu, 0x5125DAD3u,
    0x61C69362u, 0x7198540Du, 0x82F63B78u, 0x92A8FC17u, 0xA24BB5A6u, 0xB21572C9u,
    0xC38D26C4u, 0xD3D3E1ABu, 0xE330A81Au, 0xF36E6F75u};

uint32_t fb_crc32c_update(uint32_t crc, const uint8_t *data, size_t len)
{
    while (len--) {
        crc ^= *data++;
        crc = (crc >> 4) ^ crc32c_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc32c_nibble[crc & 0x0Fu];
    }
    return crc;
}

uint32_t fb_crc32c(const uint8_t *data, size_t len)
{
    return fb_crc32c_update(FB_CRC32C_INIT, data, len) ^ FB_CRC32C_XOROUT;
}

/* ---- COBS ----------------------------------------------------------------- */
size_t fb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t code_at = 0, w = 1, i;
    uint8_t code = 1;
    if (cap == 0) return 0;
    for (i = 0; i < len; i++) {
        if (in[i] != 0) {
            if (w >= cap) return 0;
            out[w++] = in[i];
            code++;
        }
        if (in[i] == 0 || code == 0xFF) {
            out[code_at] = code;
            code = 1;
            code_at = w;
            /* a full block at the very end needs no terminating 0x01 block */
            if (in[i] == 0 || i + 1 < len) {
                if (w >= cap) return 0;
                w++;
            }
        }
    }
    if (code_at < w) out[code_at] = code;
    return w;
}

fb_result fb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t i = 0, w = 0;
    while (i < len) {
        uint8_t code = in[i];
        size_t j, k;
        if (code == 0) return FB_ERR_COBS;
        j = i + code;
        if (j > len) return FB_ERR_COBS;
        for (k = i + 1; k < j; k++) {
            if (in[k] == 0) return FB_ERR_COBS;
            if (w >= cap) return FB_ERR_BUFFER;
            out[w++] = in[k];
        }
        if (code != 0xFF && j < len) {
            if (w >= cap) return FB_ERR_BUFFER;
            out[w++] = 0;
        }
        i = j;
    }
    *out_len = w;
    return FB_OK;
}

/* ---- payload encoders ------------------------------------------------------ */
/* Each writes the payload at p (room: FB_MAX_PAYLOAD_SIZE) and returns its
 * length, or a negative fb_result. */

static int enc_hello(const fb_hello *h, uint8_t *p)
{
    size_t pos = 16, s, c, ch = 0;
    put_u64(p, h->device_id);
    p[8] = h->fw_major; p[9] = h->fw_minor; put_u16(p + 10, h->fw_patch);
    p[12] = h->proto_min; p[13] = h->proto_max; p[14] = h->n_streams; p[15] = 0;
    if (h->n_streams && (!h->streams || !h->channels)) return FB_ERR_ARG;
    for (s = 0; s < h->n_streams; s++) {
        const fb_stream *st = &h->streams[s];
        size_t t;
        for (t = 0; t < s; t++)
            if (h->streams[t].stream_id == st->stream_id) return FB_ERR_ARG;
        if (st->sample_format != FB_FMT_INT16 && st->sample_format != FB_FMT_INT24) return FB_ERR_ARG;
        if (st->n_channels == 0 || !f32_positive(st->sample_rate_hz)) return FB_ERR_ARG;
        if (pos + 8 > FB_MAX_PAYLOAD_SIZE) return FB_ERR_TOO_LONG;
        p[pos] = st->stream_id; p[pos + 1] = st->sample_format; p[pos + 2] = st->n_channels;
        p[pos + 3] = 0; put_f32(p + pos + 4, st->sample_rate_hz);
        pos += 8;
        for (c = 0; c < st->n_channels; c++, ch++) {
            const fb_channel *cd = &h->channels[ch];
            size_t k;
            if (!f32_finite(cd->scale) || !f32_finite(cd->offset)) return FB_ERR_ARG;
            if (cd->name_len > FB_MAX_TEXT || cd->unit_len > FB_MAX_TEXT) return FB_ERR_ARG;
            if ((cd->name_len && !cd->name) || (cd->unit_len && !cd->unit)) return FB_ERR_ARG;
            for (k = 0; k < cd->unit_len; k++)
                if ((uint8_t)cd->unit[k] >= 0x80u) return FB_ERR_ARG;
            if (pos + 10u + cd->name_len + cd->unit_len > FB_MAX_PAYLOAD_SIZE) return FB_ERR_TOO_LONG;
            put_f32(p + pos, cd->scale); put_f32(p + pos + 4, cd->offset);
            pos += 8;
            p[pos++] = cd->name_len;
            if (cd->name_len) memcpy(p + pos, cd->name, cd->name_len);
            pos += cd->name_len;
            p[pos++] = cd->unit_len;
            if (cd->unit_len) memcpy(p + pos, cd->unit, cd->unit_len);
            pos += cd->unit_len;
        }
    }
    return (int)pos;
}

static int enc_samples(const fb_samples *s, uint8_t *p)
{
    size_t count = (size_t)s->n_samples * s->n_channels, i;
    size_t width = s->sample_format == FB_FMT_INT16 ? 2u : 3u;
    if (s->sample_format != FB_FMT_INT16 && s->sample_format != FB_FMT_INT24) return FB_ERR_ARG;
    if (s->n_channels == 0 || s->n_samples == 0) return FB_ERR_ARG;
    if (14u + count * width > FB_MAX_PAYLOAD_SIZE) return FB_ERR_TOO_LONG;
    put_u64(p, s->first_sample_index);
    p[8] = s->stream_id; p[9] = s->sample_format; p[10] = s->n_channels; p[11] = 0;
    put_u16(p + 12, s->n_samples);
    p += 14;
    if (!(width == 2 ? (const void *)s->i16 : (const void *)s->i32) && s->packed) {
        memcpy(p, s->packed, count * width); /* re-sending a decoded frame */
    } else if (width == 2) {
        if (!s->i16) return FB_ERR_ARG;
        for (i = 0; i < count; i++, p += 2) put_u16(p, (uint16_t)s->i16[i]);
    } else {
        if (!s->i32) return FB_ERR_ARG;
        for (i = 0; i < count; i++, p += 3) {
            int32_t v = s->i32[i];
            uint32_t u = (uint32_t)v;
            if (v < FB_INVALID_INT24 || v > 0x7FFFFF) return FB_ERR_ARG;
            p[0] = (uint8_t)u; p[1] = (uint8_t)(u >> 8); p[2] = (uint8_t)(u >> 16);
        }
    }
    return (int)(14u + count * width);
}

static int enc_vitals(const fb_vitals *v, uint8_t *p)
{
    size_t i;
    if (v->count > FB_MAX_VITALS || (size_t)4u + 8u * v->count > FB_MAX_PAYLOAD_SIZE) return FB_ERR_TOO_LONG;
    if (v->count && !v->items) return FB_ERR_ARG;
    p[0] = v->count; p[1] = p[2] = p[3] = 0;
    for (i = 0; i < v->count; i++) {
        uint8_t *q = p + 4 + 8 * i;
        q[0] = v->items[i].kind; q[1] = v->items[i].unit; q[2] = v->items[i].flags; q[3] = 0;
        put_f32(q + 4, v->items[i].value);
    }
    return (int)(4u + 8u * v->count);
}

static int enc_payload(const fb_message *m, uint8_t *p)
{
    switch (m->hdr.type) {
    case FB_MSG_HELLO: return enc_hello(&m->u.hello, p);
    case FB_MSG_WELCOME:
        p[0] = m->u.welcome.chosen_version; p[1] = m->u.welcome.result; p[2] = p[3] = 0;
        put_u64(p + 4, m->u.welcome.gateway_time_us);
        return 12;
    case FB_MSG_SAMPLES: return enc_samples(&m->u.samples, p);
    case FB_MSG_VITALS: return enc_vitals(&m->u.vitals, p);
    case FB_MSG_STATUS:
        if (m->u.status.battery_percent > 100 && m->u.status.battery_percent != FB_BATTERY_UNKNOWN)
            return FB_ERR_ARG;
        p[0] = m->u.status.battery_percent; p[1] = m->u.status.contact;
        put_u16(p + 2, m->u.status.battery_mv); put_u32(p + 4, m->u.status.error_flags);
        return 8;
    case FB_MSG_TIME_SYNC_REQ: put_u64(p, m->u.time_sync_req.t1); return 8;
    case FB_MSG_TIME_SYNC_RESP:
        put_u64(p, m->u.time_sync_resp.t1); put_u64(p + 8, m->u.time_sync_resp.t2);
        put_u64(p + 16, m->u.time_sync_resp.t3);
        return 24;
    case FB_MSG_ACK:
    case FB_MSG_NACK:
        put_u32(p, m->u.ack.acked_seq); p[4] = m->u.ack.acked_type; p[5] = m->u.ack.reason;
        p[6] = p[7] = 0;
        return 8;
    case FB_MSG_LOG:
        if (m->u.log.text_len && !m->u.log.text) return FB_ERR_ARG;
        p[0] = m->u.log.level; p[1] = m->u.log.text_len;
        if (m->u.log.text_len) memcpy(p + 2, m->u.log.text, m->u.log.text_len);
        return 2 + m->u.log.text_len;
    default: return FB_ERR_ARG;
    }
}

int fb_encode_frame(const fb_message *msg, uint8_t *scratch, uint8_t *out, size_t cap)
{
    int n;
    size_t len, w;
    if (!msg || !scratch || !out) return FB_ERR_ARG;
    n = enc_payload(msg, scratch + FB_HEADER_SIZE);
    if (n < 0) return n;
    scratch[0] = msg->hdr.version; scratch[1] = msg->hdr.type; scratch[2] = msg->hdr.flags;
    scratch[3] = 0;
    put_u32(scratch + 4, msg->hdr.seq);
    put_u64(scratch + 8, msg->hdr.timestamp_us);
    len = FB_HEADER_SIZE + (size_t)n;
    put_u32(scratch + len, fb_crc32c(scratch, len));
    len += FB_CRC_SIZE;
    w = fb_cobs_encode(scratch, len, out, cap);
    if (w == 0 || w >= cap) return FB_ERR_BUFFER;
    out[w++] = 0;
    return (int)w;
}

/* ---- payload parsers ---------------------------------------------------------- */

static fb_result parse_hello(const uint8_t *p, size_t n, fb_hello *h, fb_parse_space *sp)
{
    size_t pos = 16, s, c, ch = 0, t;
    if (n < 16) return FB_ERR_PAYLOAD;
    h->device_id = get_u64(p);
    h->fw_major = p[8]; h->fw_minor = p[9]; h->fw_patch = get_u16(p + 10);
    h->proto_min = p[12]; h->proto_max = p[13]; h->n_streams = p[14];
    h->streams = sp->streams; h->channels = sp->channels;
    for (s = 0; s < h->n_streams; s++) {
        fb_stream st;
        if (pos + 8 > n) return FB_ERR_PAYLOAD;
        st.stream_id = p[pos]; st.sample_format = p[pos + 1]; st.n_channels = p[pos + 2];
        st.sample_rate_hz = get_f32(p + pos + 4);
        pos += 8;
        for (c = 0; c < st.n_channels; c++, ch++) {
            fb_channel cd;
            size_t k;
            if (pos + 9 > n) return FB_ERR_PAYLOAD;
            cd.scale = get_f32(p + pos); cd.offset = get_f32(p + pos + 4);
            pos += 8;
            cd.name_len = p[pos++];
            if (cd.name_len > FB_MAX_TEXT || pos + cd.name_len + 1 > n) return FB_ERR_PAYLOAD;
            cd.name = (const char *)(p + pos);
            pos += cd.name_len;
            cd.unit_len = p[pos++];
            if (cd.unit_len > FB_MAX_TEXT || pos + cd.unit_len > n) return FB_ERR_PAYLOAD;
            cd.unit = (const char *)(p + pos);
            for (k = 0; k < cd.unit_len; k++)
                if (p[pos + k] >= 0x80u) return FB_ERR_PAYLOAD;
            pos += cd.unit_len;
            if (!f32_finite(cd.scale) || !f32_finite(cd.offset)) return FB_ERR_PAYLOAD;
            if (ch < FB_MAX_CHANNELS) sp->channels[ch] = cd;
        }
        if (st.sample_format != FB_FMT_INT16 && st.sample_format != FB_FMT_INT24) return FB_ERR_PAYLOAD;
        if (st.n_channels == 0 || !f32_positive(st.sample_rate_hz)) return FB_ERR_PAYLOAD;
        if (s < FB_MAX_STREAMS) sp->streams[s] = st;
    }
    if (pos != n) return FB_ERR_PAYLOAD;
    for (s = 0; s < h->n_streams && s < FB_MAX_STREAMS; s++)
        for (t = 0; t < s; t++)
            if (sp->streams[t].stream_id == sp->streams[s].stream_id) return FB_ERR_PAYLOAD;
    if (h->n_streams > FB_MAX_STREAMS || ch > FB_MAX_CHANNELS) return FB_ERR_CAPACITY;
    return FB_OK;
}

static fb_result parse_payload(uint8_t type, const uint8_t *p, size_t n, fb_message *m, fb_parse_space *sp)
{
    size_t i;
    switch (type) {
    case FB_MSG_HELLO: return parse_hello(p, n, &m->u.hello, sp);
    case FB_MSG_WELCOME:
        if (n != 12) return FB_ERR_PAYLOAD;
        m->u.welcome.chosen_version = p[0]; m->u.welcome.result = p[1];
        m->u.welcome.gateway_time_us = get_u64(p + 4);
        return FB_OK;
    case FB_MSG_SAMPLES: {
        fb_samples *s = &m->u.samples;
        size_t width;
        if (n < 14) return FB_ERR_PAYLOAD;
        s->first_sample_index = get_u64(p);
        s->stream_id = p[8]; s->sample_format = p[9]; s->n_channels = p[10];
        s->n_samples = get_u16(p + 12);
        if (s->sample_format == FB_FMT_INT16) width = 2;
        else if (s->sample_format == FB_FMT_INT24) width = 3;
        else return FB_ERR_PAYLOAD;
        if (s->n_channels == 0 || s->n_samples == 0) return FB_ERR_PAYLOAD;
        if (n != 14u + (size_t)s->n_samples * s->n_channels * width) return FB_ERR_PAYLOAD;
        s->i16 = NULL; s->i32 = NULL; s->packed = p + 14;
        return FB_OK;
    }
    case FB_MSG_VITALS:
        if (n < 4 || n != 4u + 8u * p[0]) return FB_ERR_PAYLOAD;
        if (p[0] > FB_MAX_VITALS) return FB_ERR_CAPACITY;
        m->u.vitals.count = p[0];
        m->u.vitals.items = sp->vitals;
        for (i = 0; i < p[0]; i++) {
            const uint8_t *q = p + 4 + 8 * i;
            sp->vitals[i].kind = q[0]; sp->vitals[i].unit = q[1]; sp->vitals[i].flags = q[2];
            sp->vitals[i].value = get_f32(q + 4);
        }
        return FB_OK;
    case FB_MSG_STATUS:
        if (n != 8) return FB_ERR_PAYLOAD;
        if (p[0] > 100 && p[0] != FB_BATTERY_UNKNOWN) return FB_ERR_PAYLOAD;
        m->u.status.battery_percent = p[0]; m->u.status.contact = p[1];
        m->u.status.battery_mv = get_u16(p + 2); m->u.status.error_flags = get_u32(p + 4);
        return FB_OK;
    case FB_MSG_TIME_SYNC_REQ:
        if (n != 8) return FB_ERR_PAYLOAD;
        m->u.time_sync_req.t1 = get_u64(p);
        return FB_OK;
    case FB_MSG_TIME_SYNC_RESP:
        if (n != 24) return FB_ERR_PAYLOAD;
        m->u.time_sync_resp.t1 = get_u64(p); m->u.time_sync_resp.t2 = get_u64(p + 8);
        m->u.time_sync_resp.t3 = get_u64(p + 16);
        return FB_OK;
    case FB_MSG_ACK:
    case FB_MSG_NACK:
        if (n != 8) return FB_ERR_PAYLOAD;
        m->u.ack.acked_seq = get_u32(p); m->u.ack.acked_type = p[4]; m->u.ack.reason = p[5];
        return FB_OK;
    case FB_MSG_LOG:
        if (n < 2 || n != 2u + p[1]) return FB_ERR_PAYLOAD;
        m->u.log.level = p[0]; m->u.log.text_len = p[1]; m->u.log.text = (const char *)(p + 2);
        return FB_OK;
    default: return FB_ERR_UNKNOWN_TYPE;
    }
}

static fb_result check_frame(const uint8_t *frame, size_t len)
{
    if (len < FB_MIN_FRAME_SIZE) return FB_ERR_SHORT;
    if (len > FB_MAX_FRAME_SIZE) return FB_ERR_TOO_LONG;
    if (fb_crc32c(frame, len - FB_CRC_SIZE) != get_u32(frame + len - FB_CRC_SIZE)) return FB_ERR_CRC;
    return FB_OK;
}

static void parse_header(const uint8_t *frame, fb_header *h)
{
    h->version = frame[0]; h->type = frame[1]; h->flags = frame[2];
    h->seq = get_u32(frame + 4); h->timestamp_us = get_u64(frame + 8);
}

fb_result fb_parse_frame(const uint8_t *frame, size_t len, fb_message *msg, fb_parse_space *space)
{
    fb_result r = check_frame(frame, len);
    if (r != FB_OK) return r;
    parse_header(frame, &msg->hdr);
    return parse_payload(msg->hdr.type, frame + FB_HEADER_SIZE, len - FB_MIN_FRAME_SIZE, msg, space);
}

int32_t fb_samples_value(const fb_samples *s, size_t sample, size_t channel)
{
    size_t k = sample * s->n_channels + channel;
    if (s->sample_format == FB_FMT_INT16) {
        const uint8_t *q = s->packed + 2 * k;
        return (int32_t)(int16_t)get_u16(q);
    } else {
        const uint8_t *q = s->packed + 3 * k;
        uint32_t u = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16);
        return (u & 0x800000u) ? (int32_t)u - 0x1000000 : (int32_t)u;
    }
}

/* ---- streaming decoder ----------------------------------------------------------- */

static void reset_frame(fb_decoder *d)
{
    d->len = 0; d->raw_len = 0; d->block_left = 0; d->zero_pending = 0; d->overflow = 0;
}

void fb_decoder_init(fb_decoder *dec, uint8_t version)
{
    memset(dec, 0, sizeof *dec);
    dec->version = version;
}

static int reject(fb_decoder *d, fb_result r)
{
    fb_stats *st = &d->stats;
    switch (r) {
    case FB_ERR_COBS: st->cobs_errors++; break;
    case FB_ERR_TOO_LONG: st->too_long++; break;
    case FB_ERR_SHORT: st->short_frames++; break;
    case FB_ERR_CRC: st->crc_errors++; break;
    case FB_ERR_VERSION: st->bad_version++; break;
    case FB_ERR_CAPACITY: st->capacity_errors++; break;
    case FB_ERR_UNKNOWN_TYPE: st->unknown_type++; return r; /* a valid frame: not discarded */
    default: st->payload_errors++; break;
    }
    st->bytes_discarded += d->raw_len;
    return r;
}

static int finish_frame(fb_decoder *d, fb_message *msg)
{
    fb_result r;
    if (d->block_left) return reject(d, FB_ERR_COBS);
    r = check_frame(d->frame, d->len);
    if (r != FB_OK) return reject(d, r);
    parse_header(d->frame, &msg->hdr);
    if (msg->hdr.version != d->version && msg->hdr.type != FB_MSG_HELLO && msg->hdr.type != FB_MSG_WELCOME)
        return reject(d, FB_ERR_VERSION);
    r = parse_payload(msg->hdr.type, d->frame + FB_HEADER_SIZE, d->len - FB_MIN_FRAME_SIZE, msg, &d->space);
    if (r != FB_OK) return reject(d, r);
    d->stats.frames_ok++;
    return FB_FRAME;
}

static int append(fb_decoder *d, uint8_t b)
{
    if (d->len >= FB_MAX_FRAME_SIZE) {
        d->overflow = 1;
        d->stats.too_long++;
        return 0;
    }
    d->frame[d->len++] = b;
    return 1;
}

int fb_decoder_feed(fb_decoder *d, uint8_t byte, fb_message *msg)
{
    int r;
    if (byte == 0) {
        if (d->overflow) {
            d->stats.bytes_discarded += d->raw_len;
            reset_frame(d);
            return FB_ERR_TOO_LONG; /* counted when the overflow began */
        }
        if (d->raw_len == 0) return FB_OK; /* empty frame: idle line / resync filler */
        r = finish_frame(d, msg);
        reset_frame(d);
        return r;
    }
    if (d->raw_len < 0xFFFFu) d->raw_len++;
    else { d->stats.bytes_discarded++; } /* only reachable while overflowing */
    if (d->overflow) return FB_OK;
    if (d->block_left == 0) { /* a COBS code byte */
        if (d->zero_pending && !append(d, 0)) return FB_OK;
        d->block_left = (uint8_t)(byte - 1);
        d->zero_pending = byte != 0xFF;
    } else {
        d->block_left--;
        if (!append(d, byte)) return FB_OK;
    }
    return FB_OK;
}
