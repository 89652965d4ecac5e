/*
 * fb_vectors.c - test harness for the C codec (not part of the library).
 *
 *   fb_vectors check FILE    every V line: the C encoder reproduces hex= byte for
 *                            byte, the streaming decoder accepts it, and decoding
 *                            then re-encoding and re-describing round-trips; every
 *                            R line: the decoder rejects it under the expected counter.
 *   fb_vectors encode FILE   print "<name> <hex>" of the C encoding of each V line.
 *   fb_vectors decode        each stdin line is hex of a byte stream; feed it to a
 *                            fresh decoder and print "F <description>" per message,
 *                            then "S <counter>=<n> ..." with the decoder's stats.
 *
 * The line format is described in ../vectorfmt.py.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fb_protocol.h"

#define LINE_MAX_LEN (1 << 20)

/* ---- a growable-free string builder ------------------------------------------ */
typedef struct { char *buf; size_t cap, len; int overflow; } sb_t;

static void sb_printf(sb_t *sb, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (sb->overflow) return;
    va_start(ap, fmt);
    n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sb->cap - sb->len) { sb->overflow = 1; return; }
    sb->len += (size_t)n;
}

static void sb_hex(sb_t *sb, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) sb_printf(sb, "%02x", p[i]);
}

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* ---- description printer (same text as vectorfmt.format_message) ---------------- */
static const char *type_name(uint8_t t)
{
    switch (t) {
    case FB_MSG_HELLO: return "HELLO";
    case FB_MSG_WELCOME: return "WELCOME";
    case FB_MSG_SAMPLES: return "SAMPLES";
    case FB_MSG_VITALS: return "VITALS";
    case FB_MSG_STATUS: return "STATUS";
    case FB_MSG_TIME_SYNC_REQ: return "TIME_SYNC_REQ";
    case FB_MSG_TIME_SYNC_RESP: return "TIME_SYNC_RESP";
    case FB_MSG_ACK: return "ACK";
    case FB_MSG_NACK: return "NACK";
    case FB_MSG_LOG: return "LOG";
    default: return NULL;
    }
}

static int type_code(const char *name)
{
    static const uint8_t codes[] = {FB_MSG_HELLO, FB_MSG_WELCOME, FB_MSG_SAMPLES, FB_MSG_VITALS,
                                    FB_MSG_STATUS, FB_MSG_TIME_SYNC_REQ, FB_MSG_TIME_SYNC_RESP,
                                    FB_MSG_ACK, FB_MSG_NACK, FB_MSG_LOG};
    size_t i;
    for (i = 0; i < sizeof codes; i++)
        if (strcmp(type_name(codes[i]), name) == 0) return codes[i];
    return -1;
}

static int32_t sample_at(const fb_samples *s, size_t k)
{
    if (s->packed) return fb_samples_value(s, k / s->n_channels, k % s->n_channels);
    return s->sample_format == FB_FMT_INT16 ? s->i16[k] : s->i32[k];
}

static void describe(sb_t *sb, const fb_message *m)
{
    size_t i, c, ch = 0;
    sb_printf(sb, "%s ver=%u seq=%lu ts=%llu flags=%u", type_name(m->hdr.type), m->hdr.version,
              (unsigned long)m->hdr.seq, (unsigned long long)m->hdr.timestamp_us, m->hdr.flags);
    switch (m->hdr.type) {
    case FB_MSG_HELLO: {
        const fb_hello *h = &m->u.hello;
        sb_printf(sb, " dev=%llu fw=%u.%u.%u pmin=%u pmax=%u", (unsigned long long)h->device_id,
                  h->fw_major, h->fw_minor, h->fw_patch, h->proto_min, h->proto_max);
        for (i = 0; i < h->n_streams; i++) {
            const fb_stream *s = &h->streams[i];
            sb_printf(sb, " stream=%u:%u:%u:%08lx", s->stream_id, s->sample_format, s->n_channels,
                      (unsigned long)fbits(s->sample_rate_hz));
            for (c = 0; c < s->n_channels; c++, ch++) {
                const fb_channel *cd = &h->channels[ch];
                sb_printf(sb, " chan=%08lx:%08lx:", (unsigned long)fbits(cd->scale),
                          (unsigned long)fbits(cd->offset));
                sb_hex(sb, (const uint8_t *)cd->name, cd->name_len);
                sb_printf(sb, ":");
                sb_hex(sb, (const uint8_t *)cd->unit, cd->unit_len);
            }
        }
        break;
    }
    case FB_MSG_WELCOME:
        sb_printf(sb, " chosen=%u result=%u gwtime=%llu", m->u.welcome.chosen_version,
                  m->u.welcome.result, (unsigned long long)m->u.welcome.gateway_time_us);
        break;
    case FB_MSG_SAMPLES: {
        const fb_samples *s = &m->u.samples;
        size_t count = (size_t)s->n_samples * s->n_channels;
        sb_printf(sb, " stream=%u fmt=%u first=%llu nch=%u n=%u data=", s->stream_id,
                  s->sample_format, (unsigned long long)s->first_sample_index, s->n_channels,
                  s->n_samples);
        for (i = 0; i < count; i++) sb_printf(sb, i ? ",%ld" : "%ld", (long)sample_at(s, i));
        break;
    }
    case FB_MSG_VITALS:
        for (i = 0; i < m->u.vitals.count; i++) {
            const fb_vital *v = &m->u.vitals.items[i];
            sb_printf(sb, " vital=%u:%u:%u:%08lx", v->kind, v->unit, v->flags,
                      (unsigned long)fbits(v->value));
        }
        break;
    case FB_MSG_STATUS:
        sb_printf(sb, " batt=%u contact=%u mv=%u errors=%lu", m->u.status.battery_percent,
                  m->u.status.contact, m->u.status.battery_mv, (unsigned long)m->u.status.error_flags);
        break;
    case FB_MSG_TIME_SYNC_REQ:
        sb_printf(sb, " t1=%llu", (unsigned long long)m->u.time_sync_req.t1);
        break;
    case FB_MSG_TIME_SYNC_RESP:
        sb_printf(sb, " t1=%llu t2=%llu t3=%llu", (unsigned long long)m->u.time_sync_resp.t1,
                  (unsigned long long)m->u.time_sync_resp.t2, (unsigned long long)m->u.time_sync_resp.t3);
        break;
    case FB_MSG_ACK:
    case FB_MSG_NACK:
        sb_printf(sb, " aseq=%lu atype=%u reason=%u", (unsigned long)m->u.ack.acked_seq,
                  m->u.ack.acked_type, m->u.ack.reason);
        break;
    case FB_MSG_LOG:
        sb_printf(sb, " level=%u text=", m->u.log.level);
        sb_hex(sb, (const uint8_t *)m->u.log.text, m->u.log.text_len);
        break;
    default: break;
    }
}

/* ---- description parser ----------------------------------------------------------- */
typedef struct {
    fb_stream streams[FB_MAX_STREAMS];
    fb_channel channels[FB_MAX_CHANNELS];
    char names[FB_MAX_CHANNELS][FB_MAX_TEXT];
    char units[FB_MAX_CHANNELS][FB_MAX_TEXT];
    fb_vital vitals[FB_MAX_VITALS];
    int16_t i16[FB_MAX_PAYLOAD_SIZE / 2];
    int32_t i32[FB_MAX_PAYLOAD_SIZE / 3];
    char text[FB_MAX_LOG_TEXT];
} desc_space;

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = strlen(s), i;
    if (len % 2 || len / 2 > cap) return -1;
    for (i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    *n = len / 2;
    return 0;
}

static unsigned long long u(const char *s) { return strtoull(s, NULL, 10); }
static float fhex(const char *s) { return bitsf((uint32_t)strtoul(s, NULL, 16)); }

/* Fields separated by ':' (empty fields allowed). */
static size_t split_colon(char *s, char **parts, size_t max)
{
    size_t n = 0;
    parts[n++] = s;
    while (*s && n < max) {
        if (*s == ':') { *s = '\0'; parts[n++] = s + 1; }
        s++;
    }
    return n;
}

/* tokens[0] is the type name; returns 0 on success. */
static int parse_desc(char **tok, int ntok, fb_message *m, desc_space *ds)
{
    int i, type = type_code(tok[0]);
    size_t nstreams = 0, nchan = 0, nvit = 0, ndata = 0;
    if (type < 0) return -1;
    memset(m, 0, sizeof *m);
    m->hdr.type = (uint8_t)type;
    for (i = 1; i < ntok; i++) {
        char *k = tok[i], *v = strchr(tok[i], '=');
        char *parts[4];
        size_t n;
        if (!v) return -1;
        *v++ = '\0';
        if (!strcmp(k, "ver")) m->hdr.version = (uint8_t)u(v);
        else if (!strcmp(k, "seq")) m->hdr.seq = (uint32_t)u(v);
        else if (!strcmp(k, "ts")) m->hdr.timestamp_us = u(v);
        else if (!strcmp(k, "flags")) m->hdr.flags = (uint8_t)u(v);
        else if (type == FB_MSG_HELLO) {
            fb_hello *h = &m->u.hello;
            if (!strcmp(k, "dev")) h->device_id = u(v);
            else if (!strcmp(k, "fw")) {
                unsigned a, b, c;
                if (sscanf(v, "%u.%u.%u", &a, &b, &c) != 3) return -1;
                h->fw_major = (uint8_t)a; h->fw_minor = (uint8_t)b; h->fw_patch = (uint16_t)c;
            } else if (!strcmp(k, "pmin")) h->proto_min = (uint8_t)u(v);
            else if (!strcmp(k, "pmax")) h->proto_max = (uint8_t)u(v);
            else if (!strcmp(k, "stream")) {
                if (nstreams >= FB_MAX_STREAMS || split_colon(v, parts, 4) != 4) return -1;
                ds->streams[nstreams].stream_id = (uint8_t)u(parts[0]);
                ds->streams[nstreams].sample_format = (uint8_t)u(parts[1]);
                ds->streams[nstreams].n_channels = (uint8_t)u(parts[2]);
                ds->streams[nstreams].sample_rate_hz = fhex(parts[3]);
                nstreams++;
            } else if (!strcmp(k, "chan")) {
                fb_channel *cd = &ds->channels[nchan];
                if (nchan >= FB_MAX_CHANNELS || split_colon(v, parts, 4) != 4) return -1;
                cd->scale = fhex(parts[0]); cd->offset = fhex(parts[1]);
                if (unhex(parts[2], (uint8_t *)ds->names[nchan], FB_MAX_TEXT, &n)) return -1;
                cd->name = ds->names[nchan]; cd->name_len = (uint8_t)n;
                if (unhex(parts[3], (uint8_t *)ds->units[nchan], FB_MAX_TEXT, &n)) return -1;
                cd->unit = ds->units[nchan]; cd->unit_len = (uint8_t)n;
                nchan++;
            } else return -1;
            h->n_streams = (uint8_t)nstreams; h->streams = ds->streams; h->channels = ds->channels;
        } else if (type == FB_MSG_WELCOME) {
            if (!strcmp(k, "chosen")) m->u.welcome.chosen_version = (uint8_t)u(v);
            else if (!strcmp(k, "result")) m->u.welcome.result = (uint8_t)u(v);
            else if (!strcmp(k, "gwtime")) m->u.welcome.gateway_time_us = u(v);
            else return -1;
        } else if (type == FB_MSG_SAMPLES) {
            fb_samples *s = &m->u.samples;
            if (!strcmp(k, "stream")) s->stream_id = (uint8_t)u(v);
            else if (!strcmp(k, "fmt")) s->sample_format = (uint8_t)u(v);
            else if (!strcmp(k, "first")) s->first_sample_index = u(v);
            else if (!strcmp(k, "nch")) s->n_channels = (uint8_t)u(v);
            else if (!strcmp(k, "n")) s->n_samples = (uint16_t)u(v);
            else if (!strcmp(k, "data")) {
                char *p = v, *end;
                while (*p) {
                    long x = strtol(p, &end, 10);
                    if (end == p || ndata >= FB_MAX_PAYLOAD_SIZE / 2) return -1;
                    if (ndata < FB_MAX_PAYLOAD_SIZE / 3) ds->i32[ndata] = (int32_t)x;
                    ds->i16[ndata++] = (int16_t)x;
                    p = *end == ',' ? end + 1 : end;
                }
                s->i16 = ds->i16; s->i32 = ds->i32;
            } else return -1;
        } else if (type == FB_MSG_VITALS) {
            if (strcmp(k, "vital") || nvit >= FB_MAX_VITALS || split_colon(v, parts, 4) != 4) return -1;
            ds->vitals[nvit].kind = (uint8_t)u(parts[0]);
            ds->vitals[nvit].unit = (uint8_t)u(parts[1]);
            ds->vitals[nvit].flags = (uint8_t)u(parts[2]);
            ds->vitals[nvit].value = fhex(parts[3]);
            nvit++;
            m->u.vitals.count = (uint8_t)nvit; m->u.vitals.items = ds->vitals;
        } else if (type == FB_MSG_STATUS) {
            if (!strcmp(k, "batt")) m->u.status.battery_percent = (uint8_t)u(v);
            else if (!strcmp(k, "contact")) m->u.status.contact = (uint8_t)u(v);
            else if (!strcmp(k, "mv")) m->u.status.battery_mv = (uint16_t)u(v);
            else if (!strcmp(k, "errors")) m->u.status.error_flags = (uint32_t)u(v);
            else return -1;
        } else if (type == FB_MSG_TIME_SYNC_REQ) {
            if (strcmp(k, "t1")) return -1;
            m->u.time_sync_req.t1 = u(v);
        } else if (type == FB_MSG_TIME_SYNC_RESP) {
            if (!strcmp(k, "t1")) m->u.time_sync_resp.t1 = u(v);
            else if (!strcmp(k, "t2")) m->u.time_sync_resp.t2 = u(v);
            else if (!strcmp(k, "t3")) m->u.time_sync_resp.t3 = u(v);
            else return -1;
        } else if (type == FB_MSG_ACK || type == FB_MSG_NACK) {
            if (!strcmp(k, "aseq")) m->u.ack.acked_seq = (uint32_t)u(v);
            else if (!strcmp(k, "atype")) m->u.ack.acked_type = (uint8_t)u(v);
            else if (!strcmp(k, "reason")) m->u.ack.reason = (uint8_t)u(v);
            else return -1;
        } else if (type == FB_MSG_LOG) {
            if (!strcmp(k, "level")) m->u.log.level = (uint8_t)u(v);
            else if (!strcmp(k, "text")) {
                if (unhex(v, (uint8_t *)ds->text, sizeof ds->text, &n)) return -1;
                m->u.log.text = ds->text; m->u.log.text_len = (uint8_t)n;
            } else return -1;
        } else return -1;
    }
    return 0;
}

/* ---- modes --------------------------------------------------------------------------- */
static char line[LINE_MAX_LEN];
static char *tokens[LINE_MAX_LEN / 4];
static uint8_t wire[LINE_MAX_LEN / 2];
static uint8_t scratch[FB_MAX_FRAME_SIZE];
static uint8_t out[FB_MAX_WIRE_SIZE];
static uint8_t out2[FB_MAX_WIRE_SIZE];
static desc_space ds;
static fb_decoder dec;
static char desc_a[LINE_MAX_LEN], desc_b[LINE_MAX_LEN];

static int tokenize(char *s)
{
    int n = 0;
    char *t = strtok(s, " \t\r\n");
    while (t && n < (int)(sizeof tokens / sizeof *tokens)) { tokens[n++] = t; t = strtok(NULL, " \t\r\n"); }
    return n;
}

static const char *find_hex(int ntok, int *hex_index)
{
    int i;
    for (i = 0; i < ntok; i++)
        if (!strncmp(tokens[i], "hex=", 4)) { *hex_index = i; return tokens[i] + 4; }
    return NULL;
}

static uint32_t counter(const fb_stats *s, const char *name)
{
    if (!strcmp(name, "frames_ok")) return s->frames_ok;
    if (!strcmp(name, "crc_errors")) return s->crc_errors;
    if (!strcmp(name, "cobs_errors")) return s->cobs_errors;
    if (!strcmp(name, "too_long")) return s->too_long;
    if (!strcmp(name, "short_frames")) return s->short_frames;
    if (!strcmp(name, "unknown_type")) return s->unknown_type;
    if (!strcmp(name, "bad_version")) return s->bad_version;
    if (!strcmp(name, "payload_errors")) return s->payload_errors;
    return 0xFFFFFFFFu;
}

static void print_stats(const fb_stats *s)
{
    printf("S frames_ok=%lu crc_errors=%lu cobs_errors=%lu too_long=%lu short_frames=%lu "
           "unknown_type=%lu bad_version=%lu payload_errors=%lu bytes_discarded=%lu "
           "capacity_errors=%lu\n",
           (unsigned long)s->frames_ok, (unsigned long)s->crc_errors, (unsigned long)s->cobs_errors,
           (unsigned long)s->too_long, (unsigned long)s->short_frames, (unsigned long)s->unknown_type,
           (unsigned long)s->bad_version, (unsigned long)s->payload_errors,
           (unsigned long)s->bytes_discarded, (unsigned long)s->capacity_errors);
}

static int fail(const char *name, const char *why)
{
    printf("FAIL %s: %s\n", name, why);
    return 1;
}

static int check_valid(const char *name, int ntok, int hex_index, size_t nwire)
{
    fb_message m, d;
    int w, r = 0;
    size_t i;
    sb_t a = {desc_a, sizeof desc_a, 0, 0}, b = {desc_b, sizeof desc_b, 0, 0};
    int frames = 0;
    tokens[hex_index] = tokens[ntok - 1];
    if (parse_desc(tokens + 2, ntok - 3, &m, &ds)) return fail(name, "cannot parse description");
    w = fb_encode_frame(&m, scratch, out, sizeof out);
    if (w < 0) return fail(name, "C encoder refused the message");
    if ((size_t)w != nwire || memcmp(out, wire, nwire)) return fail(name, "C encoding differs from hex");
    fb_decoder_init(&dec, FB_PROTOCOL_VERSION);
    for (i = 0; i < nwire; i++) {
        r = fb_decoder_feed(&dec, wire[i], &d);
        if (r == FB_FRAME) frames++;
        else if (r != FB_OK) return fail(name, "C decoder rejected the frame");
    }
    if (frames != 1 || r != FB_FRAME || dec.stats.frames_ok != 1) return fail(name, "no frame at the delimiter");
    w = fb_encode_frame(&d, scratch, out2, sizeof out2);
    if (w < 0 || (size_t)w != nwire || memcmp(out2, wire, nwire)) return fail(name, "decode+encode differs");
    describe(&a, &m);
    describe(&b, &d);
    if (a.overflow || b.overflow || strcmp(desc_a, desc_b)) return fail(name, "decoded fields differ");
    return 0;
}

static int check_reject(const char *name, const char *expect, size_t nwire)
{
    fb_message d;
    size_t i;
    static const char *names[] = {"frames_ok", "crc_errors", "cobs_errors", "too_long", "short_frames",
                                  "unknown_type", "bad_version", "payload_errors"};
    fb_decoder_init(&dec, FB_PROTOCOL_VERSION);
    for (i = 0; i < nwire; i++)
        if (fb_decoder_feed(&dec, wire[i], &d) == FB_FRAME) return fail(name, "decoder accepted a bad frame");
    for (i = 0; i < sizeof names / sizeof *names; i++) {
        uint32_t want = strcmp(names[i], expect) ? 0u : 1u;
        if (counter(&dec.stats, names[i]) != want) return fail(name, "wrong counter");
    }
    if (counter(&dec.stats, expect) != 1) return fail(name, "unknown expected counter");
    return 0;
}

static int run_file(const char *path, int encode_only)
{
    FILE *f = fopen(path, "r");
    int failures = 0, checked = 0;
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return 2; }
    while (fgets(line, sizeof line, f)) {
        int ntok = tokenize(line), hex_index = -1;
        const char *hex;
        size_t nwire = 0;
        if (ntok < 3 || tokens[0][0] == '#') continue;
        hex = find_hex(ntok, &hex_index);
        if (encode_only) {
            fb_message m;
            int w;
            if (tokens[0][0] != 'V') continue;
            if (hex) tokens[hex_index] = tokens[--ntok];
            if (parse_desc(tokens + 2, ntok - 2, &m, &ds)) { printf("%s ERR parse\n", tokens[1]); continue; }
            w = fb_encode_frame(&m, scratch, out, sizeof out);
            if (w < 0) { printf("%s ERR %d\n", tokens[1], w); continue; }
            {
                sb_t a = {desc_a, sizeof desc_a, 0, 0};
                sb_hex(&a, out, (size_t)w);
                printf("%s %s\n", tokens[1], desc_a);
            }
            continue;
        }
        if (!hex || unhex(hex, wire, sizeof wire, &nwire)) { failures += fail(tokens[1], "bad hex"); continue; }
        checked++;
        if (tokens[0][0] == 'V') failures += check_valid(tokens[1], ntok, hex_index, nwire);
        else if (tokens[0][0] == 'R') failures += check_reject(tokens[1], strchr(tokens[2], '=') + 1, nwire);
        else failures += fail(tokens[1], "unknown line kind");
    }
    fclose(f);
    if (!encode_only) printf("fb_vectors: %d vectors checked, %d failures\n", checked, failures);
    return failures ? 1 : 0;
}

static int run_decode(void)
{
    while (fgets(line, sizeof line, stdin)) {
        size_t n = 0, i;
        fb_message m;
        char *end = line + strcspn(line, "\r\n");
        *end = '\0';
        if (unhex(line, wire, sizeof wire, &n)) { printf("E bad hex\n"); continue; }
        fb_decoder_init(&dec, FB_PROTOCOL_VERSION);
        for (i = 0; i < n; i++) {
            if (fb_decoder_feed(&dec, wire[i], &m) == FB_FRAME) {
                sb_t a = {desc_a, sizeof desc_a, 0, 0};
                describe(&a, &m);
                printf("F %s\n", desc_a);
            }
        }
        print_stats(&dec.stats);
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "check")) return run_file(argv[2], 0);
    if (argc == 3 && !strcmp(argv[1], "encode")) return run_file(argv[2], 1);
    if (argc == 2 && !strcmp(argv[1], "decode")) return run_decode();
    fprintf(stderr, "usage: %s check FILE | encode FILE | decode < hexlines\n", argv[0]);
    return 2;
}
