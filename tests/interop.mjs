// AWS's own SQS client (@aws-sdk/client-sqs) on the other side of interop
// tests: it sends what our client receives, and receives what ours sent.
//
//   node interop.mjs send    QUEUE_URL GROUP DEDUP BODY  -> {"MessageId","SequenceNumber"}
//   node interop.mjs receive QUEUE_URL COUNT             -> one JSON object a line
//
// The endpoint, region and credentials come from AWS_ENDPOINT_URL_SQS,
// AWS_REGION and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, as for any SDK.
// "receive" long-polls until COUNT messages came (bounded), deleting each.
import {
    DeleteMessageCommand,
    ReceiveMessageCommand,
    SendMessageCommand,
    SQSClient,
} from "@aws-sdk/client-sqs";

const [command, queueUrl, ...args] = process.argv.slice(2);
const client = new SQSClient({
    endpoint: process.env.AWS_ENDPOINT_URL_SQS,
    region: process.env.AWS_REGION ?? "us-east-1",
    // The emulator's queue URLs name a host that need not resolve: send to the endpoint.
    useQueueUrlAsEndpoint: false,
});

async function send([group, dedup, body]) {
    const out = await client.send(new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: body,
        MessageGroupId: group,
        MessageDeduplicationId: dedup,
    }));
    console.log(JSON.stringify({ MessageId: out.MessageId, SequenceNumber: out.SequenceNumber }));
}

async function receive([count]) {
    const want = Number.parseInt(count, 10);
    let got = 0;
    for (let polls = 0; polls < 20 && got < want; polls++) {
        const out = await client.send(new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ["All"],
        }));
        for (const m of out.Messages ?? []) {
            console.log(JSON.stringify({
                MessageId: m.MessageId,
                Body: m.Body,
                MessageGroupId: m.Attributes?.MessageGroupId,
                MessageDeduplicationId: m.Attributes?.MessageDeduplicationId,
                SequenceNumber: m.Attributes?.SequenceNumber,
            }));
            await client.send(new DeleteMessageCommand({
                QueueUrl: queueUrl,
                ReceiptHandle: m.ReceiptHandle,
            }));
            got++;
        }
    }
}

const commands = { send, receive };
if (!commands[command]) {
    console.error("usage: node interop.mjs send|receive QUEUE_URL ...");
    process.exit(2);
}
try {
    await commands[command](args);
} catch (err) {
    console.error(`${err.name}: ${err.message}`);
    process.exit(1);
}
