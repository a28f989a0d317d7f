// A stand-in for Amazon SQS over the JSON protocol, for the one case the
// emulator cannot show: a ReceiveMessage reply holding several messages of
// one message group, in order, as real SQS may return. It serves the
// messages of the JSON file given as the first argument ([{body, group,
// dedup}...]) in one batch to the first receive, then empty receives; it
// records deletes and visibility changes, which GET /log returns. Listens on
// 127.0.0.1, prints its port, stops when stdin closes.
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

const queued = JSON.parse(readFileSync(process.argv[2], "utf8")).map((m, i) => ({
    ...m,
    id: `m-${i}`,
    seq: String(10000000000000000000n + BigInt(i)),
    receipt: `rh-${i}`,
}));
const log = [];
let served = false;

function md5(s) {
    return createHash("md5").update(s, "utf8").digest("hex");
}

function message(m) {
    const now = String(Date.now());
    return {
        MessageId: m.id, ReceiptHandle: m.receipt, Body: m.body, MD5OfBody: md5(m.body),
        Attributes: {
            MessageGroupId: m.group, MessageDeduplicationId: m.dedup, SequenceNumber: m.seq,
            ApproximateReceiveCount: "1", SentTimestamp: now,
            ApproximateFirstReceiveTimestamp: now,
        },
    };
}

const actions = {
    ReceiveMessage: async (req) => {
        if (!served) {
            served = true;
            log.push({ action: "ReceiveMessage", count: queued.length });
            return { Messages: queued.slice(0, req.MaxNumberOfMessages ?? 1).map(message) };
        }
        await new Promise((r) => setTimeout(r, Math.min(req.WaitTimeSeconds ?? 0, 1) * 1000));
        return { Messages: [] };
    },
    DeleteMessage: async (req) => {
        log.push({ action: "Delete", receipt: req.ReceiptHandle });
        return {};
    },
    DeleteMessageBatch: async (req) => {
        for (const e of req.Entries) {
            log.push({ action: "Delete", receipt: e.ReceiptHandle });
        }
        return { Successful: req.Entries.map((e) => ({ Id: e.Id })), Failed: [] };
    },
    ChangeMessageVisibility: async (req) => {
        log.push({ action: "Visibility", receipt: req.ReceiptHandle, to: req.VisibilityTimeout });
        return {};
    },
    ChangeMessageVisibilityBatch: async (req) => {
        for (const e of req.Entries) {
            log.push({ action: "Visibility", receipt: e.ReceiptHandle, to: e.VisibilityTimeout });
        }
        return { Successful: req.Entries.map((e) => ({ Id: e.Id })), Failed: [] };
    },
};

const server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", async () => {
        if (req.method === "GET" && req.url === "/log") {
            res.writeHead(200, { "Content-Type": "application/json" });
            res.end(JSON.stringify(log));
            return;
        }
        const target = (req.headers["x-amz-target"] ?? "").replace("AmazonSQS.", "");
        const fn = actions[target];
        if (!fn) {
            res.writeHead(400, { "Content-Type": "application/x-amz-json-1.0" });
            res.end(JSON.stringify({ __type: "com.amazonaws.sqs#InvalidAction", message: target }));
            return;
        }
        const out = await fn(JSON.parse(data || "{}"));
        res.writeHead(200, { "Content-Type": "application/x-amz-json-1.0" });
        res.end(JSON.stringify(out));
    });
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
