<?php
// The web app's side of the demo room, for PHP's built-in server:
//
//   php -S 127.0.0.1:8000 examples/pusher/auth_server.php
//
//   POST /broadcasting/auth   Laravel Echo's auth endpoint (pusher-js: /pusher/auth):
//                             form socket_id, channel_name -> {"auth": ..., "channel_data": ...}
//   POST /messages            form socket_id, name, text: publishes "message.posted"
//                             to the room, leaving the sender out (Laravel's toOthers())
//
// In a Laravel app, routes/channels.php and Broadcast::routes() are this
// file: they take the user from the session and decide which channels it
// may join. This demo has no users, so it believes the name and id the page
// sends along, and answers any origin (there are no cookies to protect):
// never do either in an app. The app and the server come from the
// environment as in publish.php (the demo app by default).

declare(strict_types=1);

require __DIR__ . '/publish.php';

function reply(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
}

// The page lives on windlass's origin (http://127.0.0.1:8080), this on another.
header('Access-Control-Allow-Origin: *');
header('Access-Control-Allow-Headers: Content-Type, X-CSRF-TOKEN, X-Socket-Id');
header('Access-Control-Allow-Methods: POST, OPTIONS');
if ($_SERVER['REQUEST_METHOD'] === 'OPTIONS') {
    http_response_code(204);
    return;
}

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    reply(405, ['error' => 'POST only']);
    return;
}
$config = pusher_config();
$socket_id = (string) ($_POST['socket_id'] ?? '');
// Who is asking. A real app: auth()->user(). The demo: what the page says.
$user_id = substr(preg_replace('/[^-a-zA-Z0-9_]/', '', (string) ($_POST['user_id'] ?? '')), 0, 64);
$name = mb_substr(trim((string) ($_POST['name'] ?? '')), 0, 40) ?: 'guest';

try {
    switch ($path) {
        case '/broadcasting/auth':
        case '/pusher/auth':
            $channel = (string) ($_POST['channel_name'] ?? '');
            if ($user_id === '') {
                reply(403, ['error' => 'who are you?']);
            } elseif (str_starts_with($channel, 'presence-room.')) {
                reply(200, pusher_authorize_presence($config, $channel, $socket_id, $user_id,
                                                     ['id' => $user_id, 'name' => $name]));
            } elseif ($channel === "private-user.$user_id" || str_starts_with($channel, 'private-room.')) {
                reply(200, pusher_authorize_channel($config, $channel, $socket_id));
            } else {
                reply(403, ['error' => "not your channel: $channel"]);
            }
            break;
        case '/messages':
            $room = preg_replace('/[^-a-zA-Z0-9_.]/', '', (string) ($_POST['room'] ?? 'lobby')) ?: 'lobby';
            $text = mb_substr(trim((string) ($_POST['text'] ?? '')), 0, 2000);
            if ($text === '') {
                reply(400, ['error' => 'empty message']);
                break;
            }
            pusher_trigger($config, "presence-room.$room", 'message.posted',
                           ['name' => $name, 'user_id' => $user_id, 'text' => $text], $socket_id);
            reply(200, ['ok' => true]);
            break;
        default:
            reply(404, ['error' => 'no such endpoint']);
    }
} catch (InvalidArgumentException $e) {
    reply(400, ['error' => $e->getMessage()]);
} catch (Throwable $e) {
    reply(502, ['error' => $e->getMessage()]);
}
