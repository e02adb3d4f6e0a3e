<?php
// Laravel's Redis broadcaster, as `BROADCAST_DRIVER=redis` runs it in a
// Laravel app, without the app: Debian's php-illuminate-broadcasting and
// php-illuminate-redis (Laravel 8.83) on php-redis. Used by
// cluster_laravel_test.py; by hand:
//
//   php tests/integration/laravel_broadcast.php --port 6379 --event OrderShipped \
//       --channel private-orders.1 --channel orders --data '{"id":1}' [--socket 1.2] [--prefix P]
//
// What a Laravel app boots for it, and what stands in here:
// - BroadcastManager (the `Broadcast` facade) reads config/broadcasting.php
//   through `$app['config']` and builds the "redis" connection with
//   createRedisDriver(): a RedisBroadcaster on `$app->make('redis')`, whose
//   channel prefix is config('database.redis.options.prefix'): in a fresh
//   app Str::slug(APP_NAME, '_') . '_database_', so "laravel_database_".
// - `redis` is RedisServiceProvider's RedisManager with the "phpredis"
//   client and config/database.php's "redis" array.
// - `$app` is a bare Illuminate\Container\Container holding both, and
//   `config` a small ArrayAccess object answering the dotted keys these two
//   ask for (illuminate/config is not packaged separately in Debian).
// broadcast() is then the very call BroadcastEvent::handle() makes for an
// event implementing ShouldBroadcast: the channels of broadcastOn() (cast
// to strings: PrivateChannel('orders.1') is "private-orders.1"), the name
// (broadcastAs(), or the class name), the payload (the public properties,
// plus "socket" when the event used InteractsWithSockets and toOthers()).

require_once 'Illuminate/Broadcasting/autoload.php';
require_once 'Illuminate/Redis/autoload.php';
require_once 'Illuminate/Container/autoload.php';

use Illuminate\Broadcasting\BroadcastManager;
use Illuminate\Container\Container;
use Illuminate\Redis\RedisManager;

$options = getopt('', ['port:', 'event:', 'channel:', 'data:', 'socket:', 'prefix:']);
foreach (['port', 'event', 'channel', 'data'] as $required) {
    if (!isset($options[$required])) {
        fwrite(STDERR, "laravel_broadcast.php: --$required is required\n");
        exit(2);
    }
}
$payload = json_decode($options['data'], true);
if (!is_array($payload)) {
    fwrite(STDERR, "laravel_broadcast.php: --data must be a JSON object\n");
    exit(2);
}
if (isset($options['socket'])) {
    $payload['socket'] = $options['socket'];  // what toOthers() adds (the X-Socket-ID header)
}
$channels = (array) $options['channel'];
$prefix = $options['prefix'] ?? 'laravel_database_';

// Dotted keys over nested arrays, the part of Illuminate\Config\Repository used here.
final class Config implements ArrayAccess
{
    public function __construct(private array $items) {}

    public function get(string $key, mixed $default = null): mixed
    {
        $value = $this->items;
        foreach (explode('.', $key) as $part) {
            if (!is_array($value) || !array_key_exists($part, $value)) {
                return $default;
            }
            $value = $value[$part];
        }
        return $value;
    }

    public function offsetExists(mixed $key): bool { return $this->get($key) !== null; }
    public function offsetGet(mixed $key): mixed { return $this->get($key); }
    public function offsetSet(mixed $key, mixed $value): void { throw new LogicException('read-only'); }
    public function offsetUnset(mixed $key): void { throw new LogicException('read-only'); }
}

$config = new Config([
    'broadcasting' => ['connections' => ['redis' => ['driver' => 'redis', 'connection' => 'default']]],
    'database' => ['redis' => [
        'client' => 'phpredis',
        'options' => ['prefix' => $prefix],
        'default' => ['host' => '127.0.0.1', 'port' => (int) $options['port'], 'database' => 0],
    ]],
]);

$app = new Container();
$app->instance('config', $config);
$app->singleton('redis', fn ($app) => new RedisManager($app, 'phpredis', $config->get('database.redis')));

$broadcaster = (new BroadcastManager($app))->connection('redis');
$broadcaster->broadcast($channels, $options['event'], $payload);
echo "broadcast {$options['event']} to " . implode(', ', $channels) . "\n";
