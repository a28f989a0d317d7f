// Starts the fauxqs SQS emulator on 127.0.0.1 only, on the port given as the
// first argument (0 or none: a free one chosen by the kernel), and prints the
// port it listens on as one line on stdout. It stops on SIGTERM, SIGINT, or
// when its stdin closes, so a test that dies does not leave it behind.
//
// fauxqs's own startFauxqs() listens on every interface; buildApp() lets us
// choose the address. Queue URLs are built as
// http://sqs.<region>.localhost:<port>/000000000000/<name>, as fauxqs does by
// default, so clients must send to the endpoint and name the queue in the body.
import { buildApp } from "fauxqs";

const port = Number.parseInt(process.argv[2] ?? "0", 10) || 0;
const app = buildApp({ logger: process.env.FAUXQS_LOGGER === "true", host: "localhost" });

let stopping = false;
async function stop() {
    if (stopping) {
        return;
    }
    stopping = true;
    try {
        await app.close();
    } finally {
        process.exit(0);
    }
}

process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();

try {
    await app.listen({ port, host: "127.0.0.1" });
} catch (err) {
    console.error(`fauxqs could not listen on 127.0.0.1:${port}: ${err.message}`);
    process.exit(1);
}
process.stdout.write(`${app.server.address().port}\n`);
