/**
 * Local fakes of the three providers' send APIs, on 127.0.0.1, answering as their documentation
 * says — successes and the documented errors — so each adapter is tested against the provider's
 * rules, not against itself. Every request is recorded (fields, authorization) for the tests.
 */
export type FakeRequest = { path: string; fields: Record<string, string>; authorization: string | null };

export type FakeProvider = {
  url: string;
  requests: FakeRequest[];
  /** switches a documented failure mode on: see each fake */
  mode: string | null;
  stop(): Promise<void>;
};

function serve(route: string, answer: (request: FakeRequest, fake: FakeProvider) => Response): FakeProvider {
  const fake: FakeProvider = { url: "", requests: [], mode: null, stop: async () => {} };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (request.method !== "POST" || path !== route) return new Response("not found", { status: 404 });
      const fields = Object.fromEntries(new URLSearchParams(await request.text()));
      const recorded = { path, fields, authorization: request.headers.get("authorization") };
      fake.requests.push(recorded);
      if (fake.mode === "hang") await new Promise(() => {});
      return answer(recorded, fake);
    },
  });
  fake.url = `http://127.0.0.1:${server.port}`;
  fake.stop = () => server.stop(true);
  return fake;
}

/**
 * Twilio: basic auth by Account SID and auth token (else 401, code 20003); `To` must be E.164
 * (else 400, 21211); a number that replied STOP gets 400, 21610; modes "rate" (429, 20429) and
 * "down" (500). Success is 201 with the message resource (`sid` "SM…", `status` "queued").
 */
export function startFakeTwilio(accountSid: string, authToken: string, optedOut: string[] = []): FakeProvider {
  let next = 0;
  const error = (status: number, code: number, message: string) =>
    Response.json({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }, { status });
  return serve(`/2010-04-01/Accounts/${accountSid}/Messages.json`, ({ fields, authorization }, fake) => {
    if (authorization !== `Basic ${btoa(`${accountSid}:${authToken}`)}`) return error(401, 20003, "Authenticate");
    if (fake.mode === "rate") return error(429, 20429, "Too Many Requests");
    if (fake.mode === "down") return Response.json({ message: "internal error" }, { status: 500 });
    if (!fields.From && !fields.MessagingServiceSid) return error(400, 21603, "A 'From' phone number is required.");
    if (!/^\+[1-9]\d{6,14}$/.test(fields.To ?? "")) return error(400, 21211, `The 'To' number ${fields.To} is not a valid phone number.`);
    if (optedOut.includes(fields.To!)) return error(400, 21610, "Attempt to send to unsubscribed recipient");
    if (!fields.Body) return error(400, 21602, "Message body is required.");
    const sid = `SM${(++next).toString(16).padStart(32, "0")}`;
    return Response.json(
      { sid, account_sid: accountSid, to: fields.To, from: fields.From ?? null, body: fields.Body, status: "queued", error_code: null },
      { status: 201 },
    );
  });
}

/**
 * SMS.ru: HTTP 200 and JSON whatever happens. Wrong `api_id` → status_code 200 (request level); mode
 * "balance" → 201, "down" → 220; per number: not 7XXXXXXXXXX → 202, in `stopList` → 209, empty text
 * → 203 (request level). Accepted numbers get status_code 100 and an `sms_id`.
 */
export function startFakeSmsRu(apiId: string, stopList: string[] = []): FakeProvider {
  let next = 0;
  const refuse = (code: number, text: string) => Response.json({ status: "ERROR", status_code: code, status_text: text });
  return serve("/sms/send", ({ fields }, fake) => {
    if (fields.api_id !== apiId) return refuse(200, "Неправильный api_id");
    if (fake.mode === "balance") return refuse(201, "Не хватает средств на лицевом счету");
    if (fake.mode === "down") return refuse(220, "Сервис временно недоступен, попробуйте чуть позже");
    if (fields.json !== "1") return new Response("100\n000000-000001\nbalance=1");
    if (!fields.msg) return refuse(203, "Нет текста сообщения");
    const sms: Record<string, unknown> = {};
    for (const to of (fields.to ?? "").split(",")) {
      if (!/^7\d{10}$/.test(to)) sms[to] = { status: "ERROR", status_code: 202, status_text: "Неправильно указан номер телефона получателя" };
      else if (stopList.includes(to)) sms[to] = { status: "ERROR", status_code: 209, status_text: "Вы добавили этот номер в стоп-лист" };
      else sms[to] = { status: "OK", status_code: 100, sms_id: `000000-${String(++next).padStart(8, "0")}` };
    }
    return Response.json({ status: "OK", status_code: 100, sms, balance: 4122.56 });
  });
}

/**
 * SMSC.ru with fmt=3: wrong login or password → error_code 2; mode "balance" → 3, "busy" → 9;
 * invalid number → 7; the same `id` again within a minute → 9 (duplicate request); no text → 1.
 * Accepted: {"id": <the id sent, or a new one>, "cnt": <parts>}. Without fmt=3 it answers text.
 */
export function startFakeSmsc(login: string, password: string): FakeProvider {
  const seen = new Set<string>();
  let next = 1000;
  const refuse = (code: number, error: string, id?: string) => Response.json({ error, error_code: code, ...(id ? { id: Number(id) } : {}) });
  return serve("/sys/send.php", ({ fields }, fake) => {
    if (fields.fmt !== "3") return new Response("OK - 1 SMS, ID - 1");
    if (fields.login !== login || fields.psw !== password) return refuse(2, "authorise error");
    if (fake.mode === "balance") return refuse(3, "no money", fields.id);
    if (fake.mode === "busy") return refuse(9, "duplicate request, wait a minute", fields.id);
    if (!fields.mes) return refuse(1, "parameters error", fields.id);
    if (!/^\+?7\d{10}$/.test(fields.phones ?? "")) return refuse(7, "invalid number", fields.id);
    if (fields.id && seen.has(fields.id)) return refuse(9, "duplicate request, wait a minute", fields.id);
    if (fields.id) seen.add(fields.id);
    return Response.json({ id: fields.id ? Number(fields.id) : ++next, cnt: Math.max(1, Math.ceil([...fields.mes].length / 70)) });
  });
}
