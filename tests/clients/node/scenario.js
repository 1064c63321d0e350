// otp-service from Node.js with @grpc/grpc-js + @grpc/proto-loader: the usage
// example and the conformance test. Environment: OTP_ADDR (host:port),
// TEXTBEE_STANDIN (URL of the stand-in SMS and WhatsApp gateway), PHONE and
// CHANNEL_PHONE (numbers no other client uses).
"use strict";

const assert = require("node:assert/strict");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTO_ROOT = path.resolve(__dirname, "../../../proto");

// google.rpc.Status and the two details this scenario reads. grpc-js leaves
// `grpc-status-details-bin` undecoded, so decode it with protobufjs (which
// @grpc/proto-loader already depends on).
const richErrors = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: "string", id: 1 }, value: { type: "bytes", id: 2 } } },
            Duration: { fields: { seconds: { type: "int64", id: 1 }, nanos: { type: "int32", id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: "int32", id: 1 },
                message: { type: "string", id: 2 },
                details: { rule: "repeated", type: "google.protobuf.Any", id: 3 },
              },
            },
            RetryInfo: { fields: { retry_delay: { type: "google.protobuf.Duration", id: 1 } } },
            BadRequest: {
              fields: { field_violations: { rule: "repeated", type: "FieldViolation", id: 1 } },
              nested: {
                FieldViolation: {
                  fields: { field: { type: "string", id: 1 }, description: { type: "string", id: 2 } },
                },
              },
            },
          },
        },
      },
    },
  },
});

function detail(error, typeName) {
  const [raw] = error.metadata.get("grpc-status-details-bin");
  assert.ok(raw, "the error carries google.rpc.Status details");
  const status = richErrors.lookupType("google.rpc.Status").decode(raw);
  const wanted = `type.googleapis.com/google.rpc.${typeName}`;
  const any = status.details.find((d) => d.type_url === wanted);
  assert.ok(any, `no ${typeName} in ${JSON.stringify(status)}`);
  return richErrors.lookupType(`google.rpc.${typeName}`).decode(any.value);
}

async function lastCode(phone) {
  const response = await fetch(`${process.env.TEXTBEE_STANDIN}/messages?to=${encodeURIComponent(phone)}`);
  const messages = await response.json();
  assert.ok(messages.length > 0, `no SMS recorded for ${phone}`);
  const match = /\b(\d{6})\b/.exec(messages[messages.length - 1]);
  assert.ok(match, "a code in the message");
  return match[1];
}

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 10_000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("the call must fail");
}

async function main() {
  const definition = protoLoader.loadSync("otp/v1/otp.proto", {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    enums: String,
    defaults: true,
  });
  const { OtpService } = grpc.loadPackageDefinition(definition).otp.v1;
  const otp = new OtpService(process.env.OTP_ADDR, grpc.credentials.createInsecure());
  const phone = process.env.PHONE;

  const sent = await call(otp, "SendOtp", { phone_number: phone });
  assert.equal(sent.expires_in_seconds, 120);
  assert.equal(sent.resend_after_seconds, 30);
  const code = await lastCode(phone);

  const wrong = code === "000000" ? "111111" : "000000";
  let result = await call(otp, "VerifyOtp", { phone_number: phone, code: wrong });
  assert.equal(result.result, "VERIFY_OTP_RESULT_INCORRECT");
  assert.equal(result.attempts_remaining, 4);

  result = await call(otp, "VerifyOtp", { phone_number: phone, code });
  assert.equal(result.valid, true);
  assert.equal(result.result, "VERIFY_OTP_RESULT_APPROVED");

  result = await call(otp, "VerifyOtp", { phone_number: phone, code });
  assert.equal(result.result, "VERIFY_OTP_RESULT_EXPIRED");

  const limited = await rejection(call(otp, "SendOtp", { phone_number: phone }));
  assert.equal(limited.code, grpc.status.RESOURCE_EXHAUSTED);
  const retry = detail(limited, "RetryInfo");
  const seconds = Number(retry.retry_delay.seconds);
  assert.ok(seconds >= 1 && seconds <= 30, `retry delay ${seconds}`);

  const invalid = await rejection(call(otp, "SendOtp", { phone_number: "12345" }));
  assert.equal(invalid.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(detail(invalid, "BadRequest").field_violations[0].field, "phone_number");

  // A code over WhatsApp: ask for the channel, the response names it.
  const channelPhone = process.env.CHANNEL_PHONE;
  const overWhatsApp = await call(otp, "SendOtp", { phone_number: channelPhone, channel: "CHANNEL_WHATSAPP" });
  assert.equal(overWhatsApp.channel, "CHANNEL_WHATSAPP");
  result = await call(otp, "VerifyOtp", { phone_number: channelPhone, code: await lastCode(channelPhone) });
  assert.equal(result.result, "VERIFY_OTP_RESULT_APPROVED");

  otp.close();
  console.log(`node (@grpc/grpc-js ${require("@grpc/grpc-js/package.json").version}): scenario passed; retry after ${seconds} s`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
