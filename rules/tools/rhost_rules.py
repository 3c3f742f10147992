#!/usr/bin/env python3
"""Generates rules/classify/30-providers.rules from sisimai's provider-specific tables.

Input: sisimai-rhost-rules.tsv (columns provider_module, sisimai_reason, match_fields,
...), the rows of go-sisimai's rhost/for-*.go tables (sisimai, BSD-2-Clause, Copyright
azumakuniyuki and the sisimai development team). Each module has its own way to read a
reply (a reply code and status with a text, an error code in the text, ...); this script
turns each row into one Kasi rule that reads the reply the same way, limited to the
provider's hosts (provider=, rules/providers.tsv) where the text alone could mean
something else elsewhere.

Usage: rules/tools/rhost_rules.py TSV > rules/classify/30-providers.rules
"""
import sys

PROVIDERS = {
    'aol': 'yahoo', 'apple': 'apple', 'cox': 'cox', 'facebook': 'facebook',
    'franceptt': 'orange,laposte', 'godaddy': 'godaddy', 'google': 'google',
    'gsuite': 'google', 'iua': 'iua', 'messagelabs': 'messagelabs',
    'microsoft': 'microsoft', 'outlook': 'microsoft', 'mimecast': 'mimecast',
    'nttdocomo': 'nttdocomo', 'spectrum': 'spectrum', 'tencent': 'tencent',
    'yahooinc': 'yahoo',
}
# Orange / La Poste error labels: OFR_506, OFR006_102, LPN007_416, LPNAAA_101, OUK_513
FRANCEPTT = '/\\b(?:ofr|lpn|lpnaaa|ouk)(?:_|[0-9]{3}[_-])%s\\b/'
# Replies whose sisimai reason does not carry the class, hardness or scope Kasi acts on
# (adaptive shaping slows down on rate_limited, backs off harder on reputation_block,
# suppresses on a hard bounce): Kasi keeps sisimai's reason, so its answers still agree
# with sisimai's, and gives the rule the class that says what happened. Keyed by the
# row's fields, lower-cased.
OVERRIDE = {
    # the IP's reputation, although sisimai names the sender address
    ('yahooinc', ('temporarily deferred due to unexpected volume or user complaints',)):
        'class=reputation_block',
    # [TSS09]/[TSS11] "All messages from IP will be permanently deferred": an IP block
    ('yahooinc', ('will be permanently deferred',)): 'class=reputation_block',
    # "451 4.7.500 Server busy. Please try again later from [IP]": Outlook.com throttling
    # one sending IP, not a failure of its systems
    ('microsoft', ('4.7.500', '', '', 'server busy. please try again later from')):
        'class=rate_limited scope=sender',
}
# X.3.2 "System not accepting network messages" (RFC 3463): the receiving system is not
# taking mail now (load, maintenance): a condition of the destination, never a reason to
# suppress the recipient. sisimai calls it notaccept; the rule keeps that name.
X32 = 'class=remote_system hard=no scope=destination'
# Rules tried before a module's generated rows (they would otherwise be shadowed by them).
FIRST = {
    'google': """
# "Gmail has detected an unusual rate of (unsolicited) mail originating from your
# IP address / IP netblock / SPF domain / DKIM domain" with a 4xx (4.7.28, formerly 4.7.0)
# says the mail "has been temporarily rate limited": Gmail's rate limit, set by the
# sender's reputation. sisimai reads it as blocked; Kasi keeps the reason and gives it the
# class it acts on (slow down). The same words with a 5xx say the mail "has been blocked"
# (the rows below: reputation_block).
rule blocked         provider=google code!=5xx status!=5.*.* "an unusual rate of" class=rate_limited
""",
}
# Rules tried after a module's generated rows: what is left of a status once the provider's
# documented texts have been tried.
LAST = {
    'google': """
# google: any other temporary X.7.28 ("mail flood detected") is Gmail's rate limit too:
# Gmail documents 421 4.7.28 as rate limiting
rule speeding        provider=google code!=5xx status=4.7.28
""",
}
TYPOS = {'blokced': 'blocked', 'spandetected': 'spamdetected'}
# Within a module, the order sisimai's table gives no precedence to; a specific reason is
# tried before a vaguer one that a phrase of the same reply could also match.
ORDER = ['securityerror', 'failedstarttls', 'authfailure', 'requireptr', 'userunknown',
         'hostunknown', 'notaccept', 'mailboxfull', 'suspend', 'hasmoved', 'filtered',
         'norelaying', 'mesgtoobig', 'exceedlimit', 'contenterror', 'notcompliantrfc',
         'virusdetected', 'spamdetected', 'policyviolation', 'badreputation', 'speeding',
         'toomanyconn', 'rejected', 'blocked', 'expired', 'networkerror', 'syntaxerror',
         'systemfull', 'systemerror', 'onhold']


def quote(text):
    return '"' + text.lower().replace('\\', '\\\\').replace('"', '\\"') + '"'


def regex_escape(text):
    out = ''
    for c in text.lower():
        out += '\\' + c if c in '\\.+*?()[]{}|^$/' else c
    return out


def group(rx):
    return '(?:' + rx + ')' if '|' in rx else rx


def digits_range(lo, hi, width):
    """A compact regex for the zero-padded numbers lo..hi of `width` digits."""
    if lo == hi:
        return str(lo).zfill(width)
    if width == 1:
        return '[%d-%d]' % (lo, hi)
    p = 10 ** (width - 1)
    (ld, lr), (hd, hr) = divmod(lo, p), divmod(hi, p)
    if ld == hd:
        return str(ld) + group(digits_range(lr, hr, width - 1))
    parts, tail = [], None
    if lr != 0:
        parts.append(str(ld) + group(digits_range(lr, p - 1, width - 1)))
        ld += 1
    if hr != p - 1:
        tail = str(hd) + group(digits_range(0, hr, width - 1))
        hd -= 1
    if ld <= hd:
        d = str(ld) if ld == hd else '[%d-%d]' % (ld, hd)
        parts.append(d + '[0-9]' * (width - 1))
    if tail:
        parts.append(tail)
    return '|'.join(parts)


def is_code_row(module, f):
    if module in ('cox', 'godaddy', 'franceptt', 'facebook', 'iua', 'spectrum'):
        return f[0].isupper() or f[0].isdigit()
    return False


def status_of(module, f):
    """The enhanced status a row names, '' if none."""
    if module == 'google':
        return f[1]
    if module == 'microsoft':
        return f[0]
    return ''


def override(module, reason, f):
    """class=/hard=/scope= words that replace the reason's defaults for a row, or ''."""
    key = (module, tuple(x.lower() for x in f))
    if key in OVERRIDE:
        return OVERRIDE[key]
    status = status_of(module, f)
    if reason == 'notaccept' and status.split('.')[1:] == ['3', '2']:
        return X32
    return ''


def rules_for(module, reason, f):
    """Kasi rule bodies (conditions) for one table row, in sisimai's reading of it."""
    p = 'provider=' + PROVIDERS[module]
    if module == 'google':
        code, status, text = f
        return [p + ' code=x%s status=*.%s %s' % (code[1:], status.split('.', 1)[1], quote(text))]
    if module == 'microsoft':
        status, lo, hi, text = f
        if lo == '' and hi == '':
            return [p + ' status=%s %s' % (status, quote(text))]
        return [p + ' status=%s%s-%s %s' % (status, lo, hi, quote(text))]
    if module == 'mimecast':
        code, text = f
        code = code[:3]
        return [p + ' code=%s %s' % (code, quote(text))]
    if module == 'cox' and f[0].isupper():
        # AUP#CXBL: Cox's own error codes, distinctive enough to need no host
        return ['/aup#%s\\b/' % regex_escape(f[0])]
    if module == 'spectrum':
        lo = int(f[0])
        hi = int(f[1]) if len(f) > 1 and f[1] else lo
        return ['/aup#\\D{0,8}%s\\b/' % group(digits_range(lo, hi, 4))]
    if module == 'franceptt' and f[0].isdigit():
        return [p + ' ' + FRANCEPTT % f[0]]
    if module == 'godaddy' and f[0].startswith('IB'):
        return [p + ' / %s\\b/' % regex_escape(f[0])]
    if module == 'facebook':
        return [p + ' /\\b%s\\b/' % regex_escape(f[0])]
    if module == 'iua':
        return [p + ' /\\.i\\.ua\\/err\\/%s\\//' % f[0]]
    if module == 'gsuite':
        return None  # hand-written below: the status class matters
    if module == 'nttdocomo':
        return [p + ' ' + quote(t) for t in f]
    if module == 'messagelabs':
        return [p + ' ' + quote(t) for t in f]
    return [p + ' ' + quote(f[0])]


HAND_WRITTEN = """
# franceptt: codes Orange and La Poste document as "service refused, please try later"
# with no cause (sisimai's p5 FrancePTT table lists them as undefined)
rule undefined       provider=orange,laposte @FRANCEPTT_UNDEFINED@

# google (Gmail's own DSNs, remote host googlemail.com): a DNS failure is hostunknown only
# when it is permanent
rule hostunknown     provider=google status=5.*.* code=5xx /responded with code nxdomain|domain name not found/
rule networkerror    provider=google status!=5.*.* code!=5xx /had no relevant answers\\.|responded with code nxdomain|domain name not found/
rule notaccept       provider=google "null mx"
rule userunknown     provider=google "because the address couldn't be found. check for typos or unnecessary spaces and try again."

# google: Gmail's own DSNs ("Google tried to deliver your message, but it was rejected by
# the recipient domain ... (state N)"; the reporting host is one of Google's addresses):
# the state is the stage at which the other server refused (sisimai's Gmail table)
rule blocked         "google tried to deliver your message" /\(state 13\)/
rule filtered        "google tried to deliver your message" /\(state 1[578]\)/

# nttdocomo: its status codes say more than its texts
rule userunknown     provider=nttdocomo status=5.1.1
rule filtered        provider=nttdocomo status=5.2.0
rule userunknown     provider=nttdocomo status=5.0.0 command=RCPT
rule rejected        provider=nttdocomo status=5.0.0 command=DATA

# amazon-ses: what Amazon SES's receiving endpoints mean by their texts (sisimai's
# ReceivingSES table)
rule filtered        provider=amazon-ses "mailbox does not exist"
rule mesgtoobig      provider=amazon-ses "message too large"
rule contenterror    provider=amazon-ses "message content rejected"

# kddi (au): "550 : User unknown" after DATA is the recipient's filter
rule filtered        provider=kddi "550 : user unknown"
rule userunknown     provider=kddi ">: user unknown"
"""


def main():
    rows = []
    with open(sys.argv[1], encoding='utf-8') as fh:
        next(fh)
        for line in fh:
            cols = line.rstrip('\n').split('\t')
            module, reason = cols[0], TYPOS.get(cols[1], cols[1])
            fields = [x.strip() for x in cols[2].split('|')]
            rows.append((module, reason, fields))
    print("""# Generated by rules/tools/rhost_rules.py from sisimai-rhost-rules.tsv (the project's
# copy of go-sisimai's rhost tables); change the generator, not this file.
#
# Provider-specific rules: what a mailbox provider's replies mean, from the provider's own
# documentation of its error codes and texts as collected in sisimai's rhost tables
# (go-sisimai rhost/for-*.go, BSD-2-Clause, Copyright azumakuniyuki and the sisimai
# development team; the provider's documentation page is cited in those files). Tried
# before the general rules (50-decide.rules), as sisimai tries its rhost modules first.
""")
    modules = sorted(set(r[0] for r in rows))
    for m in modules:
        mine = [r for r in rows if r[0] == m]
        # error codes first (sisimai reads a provider's code before its texts), then by reason
        mine.sort(key=lambda r: (not is_code_row(m, r[2]),
                                 ORDER.index(r[1]) if r[1] in ORDER else len(ORDER)))
        out = []
        for _, reason, fields in mine:
            bodies = rules_for(m, reason, fields)
            if bodies is None:
                continue
            extra = override(m, reason, fields)
            for b in bodies:
                line = 'rule %-15s %s' % (reason, b) + (' ' + extra if extra else '')
                if line not in out:
                    out.append(line)
        if out:
            print('# %s' % m)
            if m in FIRST:
                print(FIRST[m].strip())
            print('\n'.join(out))
            if m in LAST:
                print(LAST[m].strip())
            print()
    print(HAND_WRITTEN.strip().replace(
        '@FRANCEPTT_UNDEFINED@', FRANCEPTT % '(?:105|107|108|109|201|423|424|513)'))


if __name__ == '__main__':
    main()
