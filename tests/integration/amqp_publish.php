<?php
// The web application's side of tests/integration/amqp_input_test.py: a
// php-amqp publisher that sends what a Laravel app's broadcaster would,
// {"event": ..., "data": ..., "socket": ...}, to windlass's exchange with
// the channel as routing key, persistent (delivery mode 2), and waits for
// the broker's publisher confirms, so every message is in the durable
// queue when this script exits 0.
//
//   php amqp_publish.php publish HOST PORT EXCHANGE FILE
//     FILE: one JSON object per line, either
//       {"key": "orders", "event": "order.shipped", "data": {...}, "socket": null}
//     (the body is json_encode'd here, as Laravel does) or
//       {"key": "orders", "raw": "<any bytes>"}       (a body sent as is)
//     with an optional "message_id". Prints the number published.
//   php amqp_publish.php count HOST PORT QUEUE
//     Prints the queue's ready messages (a passive declare).
//   php amqp_publish.php delete-queue HOST PORT QUEUE
//   php amqp_publish.php declare-exchange HOST PORT EXCHANGE TYPE

if ($argc < 5) {
    fwrite(STDERR, "usage: amqp_publish.php publish HOST PORT EXCHANGE FILE | count|delete-queue HOST PORT QUEUE"
                   . " | declare-exchange HOST PORT EXCHANGE TYPE\n");
    exit(2);
}
[$mode, $host, $port, $name] = [$argv[1], $argv[2], (int)$argv[3], $argv[4]];

$connection = new AMQPConnection([
    'host' => $host, 'port' => $port, 'vhost' => '/', 'login' => 'guest', 'password' => 'guest',
    'connect_timeout' => 5, 'read_timeout' => 10, 'write_timeout' => 10,
]);
$connection->connect();
$channel = new AMQPChannel($connection);

if ($mode === 'count') {
    $queue = new AMQPQueue($channel);
    $queue->setName($name);
    $queue->setFlags(AMQP_PASSIVE);
    echo $queue->declareQueue(), "\n";
    exit(0);
}
if ($mode === 'delete-queue') {
    $queue = new AMQPQueue($channel);
    $queue->setName($name);
    $queue->delete();
    exit(0);
}
if ($mode === 'declare-exchange') {
    $exchange = new AMQPExchange($channel);
    $exchange->setName($name);
    $exchange->setType($argv[5]);
    $exchange->setFlags(AMQP_DURABLE);
    $exchange->declareExchange();
    exit(0);
}
if ($mode !== 'publish' || $argc < 6) {
    fwrite(STDERR, "amqp_publish.php: unknown mode $mode\n");
    exit(2);
}

// The same declaration windlass makes: either side may come first.
$exchange = new AMQPExchange($channel);
$exchange->setName($name);
$exchange->setType(AMQP_EX_TYPE_TOPIC);
$exchange->setFlags(AMQP_DURABLE);
$exchange->declareExchange();

$channel->confirmSelect();
$published = 0;
$confirmed = 0;
$refused = 0;
$channel->setConfirmCallback(
    function ($tag, $multiple) use (&$confirmed, &$published) {
        $confirmed = $tag;
        return $confirmed < $published;  // false: every message is confirmed, stop waiting
    },
    function ($tag, $multiple, $requeue) use (&$refused) {
        $refused++;
        return false;
    }
);

foreach (file($argv[5], FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
    $m = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
    $body = array_key_exists('raw', $m)
        ? $m['raw']
        : json_encode(['event' => $m['event'], 'data' => $m['data'], 'socket' => $m['socket'] ?? null]);
    $attributes = ['delivery_mode' => 2 /* persistent */, 'content_type' => 'application/json'];
    if (isset($m['message_id'])) {
        $attributes['message_id'] = $m['message_id'];
    }
    $exchange->publish($body, $m['key'], AMQP_NOPARAM, $attributes);
    $published++;
}
while ($confirmed < $published && $refused === 0) {
    $channel->waitForConfirm(10.0);
}
if ($refused > 0) {
    fwrite(STDERR, "amqp_publish.php: the broker refused $refused message(s)\n");
    exit(1);
}
echo $published, "\n";
$connection->disconnect();
