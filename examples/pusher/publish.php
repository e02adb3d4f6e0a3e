<?php
// Publish an event to windlass from plain PHP: what a Laravel app's
// `pusher` broadcast driver does (through the pusher-php-server SDK), in
// a page of code with nothing but php-cli: a signed POST to the HTTP API.
//
//   php examples/pusher/publish.php "Deploy finished"          a message to the demo room
//   php examples/pusher/publish.php CHANNEL EVENT JSON [SOCKET_ID]
//
// The app and the server come from the same variables a Laravel .env has
// (the defaults are the demo app of deploy/windlass.toml):
//   PUSHER_APP_ID=app-id PUSHER_APP_KEY=app-key PUSHER_APP_SECRET=app-secret
//   PUSHER_HOST=127.0.0.1 PUSHER_PORT=8080 PUSHER_SCHEME=http
//
// Included from another script (auth_server.php does), it only defines the
// functions below: pusher_config(), pusher_signed_query(),
// pusher_trigger(), pusher_authorize_channel(), pusher_authorize_presence().

declare(strict_types=1);

// The app and where windlass listens, from the environment.
function pusher_config(): array
{
    $env = static fn (string $name, string $default): string =>
        (($v = getenv($name)) !== false && $v !== '') ? $v : $default;
    return [
        'app_id' => $env('PUSHER_APP_ID', 'app-id'),
        'key' => $env('PUSHER_APP_KEY', 'app-key'),
        'secret' => $env('PUSHER_APP_SECRET', 'app-secret'),
        'host' => $env('PUSHER_HOST', '127.0.0.1'),
        'port' => (int) $env('PUSHER_PORT', '8080'),
        'scheme' => $env('PUSHER_SCHEME', 'http'),
    ];
}

// The query string of a signed API request. Every parameter but the
// signature is sorted by key and joined as k=v&k=v (not URL-encoded) into
//   METHOD "\n" PATH "\n" QUERY
// and signed with HMAC-SHA256 under the app's secret, hex-encoded; a body
// is covered by its MD5 in body_md5. windlass refuses a timestamp more
// than 600 s from its clock, so a captured request cannot be replayed.
function pusher_signed_query(array $config, string $method, string $path, string $body = '',
                             array $params = [], ?int $timestamp = null): string
{
    $params['auth_key'] = $config['key'];
    $params['auth_timestamp'] = (string) ($timestamp ?? time());
    $params['auth_version'] = '1.0';
    if ($body !== '') {
        $params['body_md5'] = md5($body);
    }
    $params = array_change_key_case($params, CASE_LOWER);
    ksort($params, SORT_STRING);
    $pairs = [];
    foreach ($params as $k => $v) {
        $pairs[] = $k . '=' . $v;
    }
    $signature = hash_hmac('sha256', $method . "\n" . $path . "\n" . implode('&', $pairs), $config['secret']);
    return http_build_query($params, '', '&', PHP_QUERY_RFC3986) . '&auth_signature=' . $signature;
}

// POST /apps/{id}/events: `$data` is JSON-encoded (as Laravel does with a
// broadcast event's public properties); `$socket_id` leaves that
// connection out (Laravel's ->toOthers()). Returns the decoded answer;
// throws on anything but 200.
function pusher_trigger(array $config, $channels, string $event, $data, ?string $socket_id = null): array
{
    $channels = (array) $channels;
    $body = ['name' => $event, 'data' => is_string($data) ? $data : json_encode($data, JSON_THROW_ON_ERROR),
             'channels' => array_values($channels)];
    if ($socket_id !== null && $socket_id !== '') {
        $body['socket_id'] = $socket_id;
    }
    $json = json_encode($body, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    $path = '/apps/' . $config['app_id'] . '/events';
    $url = sprintf('%s://%s:%d%s?%s', $config['scheme'], $config['host'], $config['port'], $path,
                   pusher_signed_query($config, 'POST', $path, $json));
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => "Content-Type: application/json\r\n",
        'content' => $json,
        'timeout' => 5,
        'ignore_errors' => true,  // read the error's body too
    ]]);
    $answer = @file_get_contents($url, false, $context);
    if ($answer === false) {
        throw new RuntimeException("cannot reach windlass at {$config['host']}:{$config['port']}");
    }
    $status = (int) (explode(' ', $http_response_header[0] ?? '')[1] ?? 0);
    if ($status !== 200) {
        throw new RuntimeException("windlass answered $status: $answer");
    }
    return json_decode($answer, true, 512, JSON_THROW_ON_ERROR);
}

// What an auth endpoint answers for a private channel: "key:signature" of
// "socket_id:channel_name". Check first that the user may have the channel.
function pusher_authorize_channel(array $config, string $channel, string $socket_id): array
{
    pusher_check_socket($channel, $socket_id);
    return ['auth' => $config['key'] . ':' . hash_hmac('sha256', $socket_id . ':' . $channel, $config['secret'])];
}

// For a presence channel: the member's channel_data (user_id as the app has it:
// Laravel passes the user's key, often an integer) is signed with it, as
// the exact string sent back (the client passes it on unchanged).
function pusher_authorize_presence(array $config, string $channel, string $socket_id, string|int $user_id,
                                   array $user_info = []): array
{
    pusher_check_socket($channel, $socket_id);
    $member = ['user_id' => $user_id];
    if ($user_info) {
        $member['user_info'] = $user_info;
    }
    $channel_data = json_encode($member, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    $signature = hash_hmac('sha256', $socket_id . ':' . $channel . ':' . $channel_data, $config['secret']);
    return ['auth' => $config['key'] . ':' . $signature, 'channel_data' => $channel_data];
}

function pusher_check_socket(string $channel, string $socket_id): void
{
    if (!preg_match('/\A\d+\.\d+\z/', $socket_id)) {
        throw new InvalidArgumentException("invalid socket_id: $socket_id");
    }
    if (!preg_match('/\A[-a-zA-Z0-9_=@,.;]{1,164}\z/', $channel)) {
        throw new InvalidArgumentException("invalid channel name: $channel");
    }
}

function pusher_publish_main(array $argv): int
{
    $args = array_slice($argv, 1);
    if (count($args) === 1) {
        [$channel, $event, $data] = ['presence-room.lobby', 'message.posted',
                                     ['name' => 'publish.php', 'text' => $args[0]]];
        $socket_id = null;
    } elseif (count($args) === 3 || count($args) === 4) {
        [$channel, $event, $json] = $args;
        $data = json_decode($json, true);
        if ($data === null && trim($json) !== 'null') {
            fwrite(STDERR, "publish.php: the data is not JSON: $json\n");
            return 2;
        }
        $socket_id = $args[3] ?? null;
    } else {
        fwrite(STDERR, "usage: php publish.php TEXT\n       php publish.php CHANNEL EVENT JSON [SOCKET_ID]\n");
        return 2;
    }
    try {
        $answer = pusher_trigger(pusher_config(), $channel, $event, $data, $socket_id);
    } catch (Throwable $e) {
        fwrite(STDERR, 'publish.php: ' . $e->getMessage() . "\n");
        return 1;
    }
    echo "published $event on $channel: " . json_encode($answer, JSON_FORCE_OBJECT) . "\n";
    return 0;
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    exit(pusher_publish_main($argv));
}
