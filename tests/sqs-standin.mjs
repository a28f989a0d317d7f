// A stand-in for SQS's JSON protocol, for what the emulator cannot show:
// throttling then success, 5xx retries, a dropped connection, a wrong MD5
// digest, a partly failed batch, and a receive with several messages of one
// group. It listens on 127.0.0.1 (port from argv[2], 0: any), prints the port,
// and stops when stdin closes or on SIGTERM.
//
// The last path segment of the QueueUrl in the request body picks the
// behaviour; each queue counts its own requests, and every reply carries the
// count in x-amzn-RequestId ("standin-N") so a test can see the retries.
import { createHash, randomUUID } from "node:crypto";
import { createServer } from "node:http";

const counts = new Map();
const md5 = (s) => createHash("md5").update(s, "utf8").digest("hex");

function error(status, type, message, queryCode) {
    return {
        status,
        headers: queryCode ? { "x-amzn-query-error": `${queryCode};Sender` } : {},
        body: JSON.stringify({ __type: `com.amazonaws.sqs#${type}`, message }),
    };
}

function sent(req) {
    return {
        status: 200,
        body: JSON.stringify({
            MessageId: randomUUID(),
            MD5OfMessageBody: md5(req.MessageBody ?? ""),
            SequenceNumber: "18800000000000000001",
        }),
    };
}

function groupBatch() {
    const msg = (n, group) => ({
        MessageId: `m${n}`,
        ReceiptHandle: `rh${n}`,
        Body: `{"req_id":"r${n}","user_id":"${group}"}`,
        MD5OfBody: md5(`{"req_id":"r${n}","user_id":"${group}"}`),
        Attributes: {
            MessageGroupId: group,
            MessageDeduplicationId: `r${n}`,
            SequenceNumber: `1880000000000000000${n}`,
            ApproximateReceiveCount: "1",
            SentTimestamp: "1700000000000",
            ApproximateFirstReceiveTimestamp: "1700000000001",
        },
    });
    return { status: 200, body: JSON.stringify({ Messages: [msg(1, "u1"), msg(2, "u1"), msg(3, "u2"), msg(4, "u1")] }) };
}

function partial(req) {
    const [first, ...rest] = req.Entries ?? [];
    return {
        status: 200,
        body: JSON.stringify({
            Successful: first ? [{ Id: first.Id, MessageId: randomUUID(), MD5OfMessageBody: md5(first.MessageBody), SequenceNumber: "1" }] : [],
            Failed: rest.map((e) => ({ Id: e.Id, Code: "InternalError", Message: "try again", SenderFault: false })),
        }),
    };
}

// What a queue answers to its n-th request (1-based); null drops the connection.
const behaviours = {
    throttled: (n, req) => (n <= 2 ? error(400, "ThrottlingException", "Rate exceeded", "AWS.SimpleQueueService.RequestThrottled") : sent(req)),
    too_many: (n, req) => (n <= 1 ? { status: 429, body: "" } : sent(req)),
    flaky: (n, req) => (n <= 2 ? { status: 503, body: "Service Unavailable" } : sent(req)),
    broken: () => error(500, "InternalError", "always failing"),
    dropped: (n, req) => (n <= 1 ? null : sent(req)),
    badmd5: () => ({ status: 200, body: JSON.stringify({ MessageId: "m", MD5OfMessageBody: md5("something else") }) }),
    groups: () => groupBatch(),
    partial: (n, req) => partial(req),
};

const server = createServer((request, response) => {
    let raw = "";
    request.setEncoding("utf8");
    request.on("data", (chunk) => { raw += chunk; });
    request.on("end", () => {
        let req = {};
        try { req = JSON.parse(raw); } catch { /* answered below */ }
        const name = String(req.QueueUrl ?? "").split("/").pop();
        const n = (counts.get(name) ?? 0) + 1;
        counts.set(name, n);
        const behaviour = behaviours[name];
        const reply = behaviour ? behaviour(n, req) : error(400, "QueueDoesNotExist", "The specified queue does not exist.", "AWS.SimpleQueueService.NonExistentQueue");
        if (reply === null) {
            request.socket.destroy();
            return;
        }
        response.writeHead(reply.status, {
            "content-type": "application/x-amz-json-1.0",
            "x-amzn-RequestId": `standin-${n}`,
            ...(reply.headers ?? {}),
        });
        response.end(reply.body);
    });
});

const stop = () => { server.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();
server.listen(Number.parseInt(process.argv[2] ?? "0", 10) || 0, "127.0.0.1", () => {
    process.stdout.write(`${server.address().port}\n`);
});
