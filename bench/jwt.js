// The usual open-source way to check a JWT in nginx, for comparison in
// `make bench`: njs verifies an HS256 token and its claims.
// bench/auth.py writes the secret into a copy of this file.
import crypto from 'crypto';

var SECRET = '@SECRET@';

function verify(r) {
    var h = r.headersIn.Authorization || '';
    if (h.substring(0, 7) !== 'Bearer ') {
        return '0';
    }
    var parts = h.substring(7).split('.');
    if (parts.length !== 3) {
        return '0';
    }
    var sig = crypto.createHmac('sha256', SECRET)
                    .update(parts[0] + '.' + parts[1]).digest('base64url');
    if (sig !== parts[2]) {
        return '0';
    }
    var header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
    if (header.alg !== 'HS256') {
        return '0';
    }
    var c = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
    var now = Date.now() / 1000;
    if (c.iss !== 'feira' || c.aud !== 'feira-api'
        || c.token_use !== 'access' || typeof c.exp !== 'number'
        || c.exp + 30 < now || !/^[0-9a-f]{24}$/.test(c.sub))
    {
        return '0';
    }
    return '1';
}

export default { verify };
