// Sends one message through the relay with Nodemailer, as an application configured with
// the relay's settings would: STARTTLS required, the API key as the password.
const fs = require("fs");
const nodemailer = require("nodemailer");

const transport = nodemailer.createTransport({
  host: "localhost",
  port: Number(process.env.RELAY_PORT),
  secure: false,
  requireTLS: true,
  auth: { user: "mailpass", pass: process.env.RELAY_KEY },
  tls: { ca: fs.readFileSync(process.env.RELAY_CA) },
});

transport
  .sendMail({
    from: '"Shop" <news@shop.example>',
    to: "Ann <ann@example.com>",
    bcc: "dan@example.com",
    subject: "Sent with Nodemailer",
    text: "Hello from Nodemailer",
    html: "<p>Hello from <b>Nodemailer</b></p>",
    headers: { "X-MailPass-Tags": "node, receipt" },
    attachments: [
      { filename: "order.pdf", content: Buffer.from(process.env.ATTACHMENT_B64, "base64") },
    ],
  })
  .then((info) => {
    console.log(JSON.stringify({ response: info.response, messageId: info.messageId }));
  })
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
