/** SPEC §3 and §8: the client directory through app.handle(), on PGlite and (with DATABASE_URL) PostgreSQL. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { expectProblem } from "./expect-problem";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §3 clients`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await testApp(backend);
    });
    afterAll(() => t.close());

    const create = (body: unknown) => t.request("POST", "/api/v1/clients", body);

    test("create answers 201 with the object, a Location header, and defaults for tag and timezone", async () => {
      const r = await create({ phone_number: "+7 (900) 000-00-01" });
      expect(r.status).toBe(201);
      expect(r.headers.get("content-type")).toStartWith("application/json");
      expect(r.body).toEqual({
        id: expect.any(Number),
        phone_number: "79000000001",
        operator_code: "900",
        tag: "",
        timezone: "UTC",
        attributes: {},
        created_at: "2026-12-01T00:00:00.000Z",
        updated_at: "2026-12-01T00:00:00.000Z",
      });
      expect(Number.isInteger(r.body.id)).toBe(true);
      expect(r.headers.get("location")).toBe(`/api/v1/clients/${r.body.id}`);
      const got = await t.request("GET", `/api/v1/clients/${r.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(r.body);
    });

    test("every phone form of §3 is stored as 7XXXXXXXXXX with the operator code derived", async () => {
      const forms: [unknown, string][] = [
        [79011000001, "79011000001"],
        ["+7 (901) 100-00-02", "79011000002"],
        ["89011000003", "79011000003"],
        [9011000004, "79011000004"],
        ["9011000005", "79011000005"],
      ];
      for (const [input, stored] of forms) {
        const r = await create({ phone_number: input, tag: "forms" });
        expect(r.status).toBe(201);
        expect(r.body.phone_number).toBe(stored);
        expect(r.body.operator_code).toBe("901");
      }
    });

    test("a phone in no accepted form → 422 naming phone_number, nothing stored", async () => {
      for (const phone of ["12345", "+1 202 555 0100", "7901abc0000", "", 1.5, "69011000009"]) {
        expectProblem(await create({ phone_number: phone, tag: "bad-phone" }), 422, "phone_number");
      }
      const list = await t.request("GET", "/api/v1/clients?tag=bad-phone");
      expect(list.body.items).toEqual([]);
    });

    test("operator_code: a matching one is accepted (string or number); one that differs → 422", async () => {
      expect((await create({ phone_number: 9021000001, operator_code: "902" })).status).toBe(201);
      expect((await create({ phone_number: 9021000002, operator_code: 902 })).status).toBe(201);
      expectProblem(await create({ phone_number: 9021000003, operator_code: "903" }), 422, "operator_code");
      expectProblem(await create({ phone_number: 9021000003, operator_code: "9021" }), 422, "operator_code");
      expect((await t.request("GET", "/api/v1/clients?q=9021000003")).body.items).toEqual([]);
    });

    test("a duplicate phone → 409 on create, whatever form it is written in", async () => {
      const first = await create({ phone_number: "+7 (903) 100-00-01", tag: "dup" });
      expect(first.status).toBe(201);
      for (const again of [79031000001, "89031000001", "9031000001"]) {
        expectProblem(await create({ phone_number: again }), 409, "phone_number");
      }
      expect((await t.request("GET", "/api/v1/clients?q=79031000001")).body.items).toHaveLength(1);
    });

    test("a duplicate phone → 409 on update; updating a client to its own phone is fine", async () => {
      const a = await create({ phone_number: 9041000001 });
      const b = await create({ phone_number: 9041000002, tag: "b" });
      expectProblem(await t.request("PATCH", `/api/v1/clients/${b.body.id}`, { phone_number: "8 904 100 00 01" }), 409, "phone_number");
      const unchanged = await t.request("GET", `/api/v1/clients/${b.body.id}`);
      expect(unchanged.body.phone_number).toBe("79041000002");
      const same = await t.request("PATCH", `/api/v1/clients/${a.body.id}`, { phone_number: "+7 904 100 00 01" });
      expect(same.status).toBe(200);
    });

    test("an unknown time zone → 422 naming timezone, on create and on update", async () => {
      expectProblem(await create({ phone_number: 9051000001, timezone: "Asia/Unknown" }), 422, "timezone");
      expectProblem(await create({ phone_number: 9051000001, timezone: "+03:00" }), 422, "timezone");
      const c = await create({ phone_number: 9051000001, timezone: "Asia/Vladivostok" });
      expect(c.status).toBe(201);
      expect(c.body.timezone).toBe("Asia/Vladivostok");
      expectProblem(await t.request("PATCH", `/api/v1/clients/${c.body.id}`, { timezone: "Asia/Unknown" }), 422, "timezone");
      expect((await t.request("GET", `/api/v1/clients/${c.body.id}`)).body.timezone).toBe("Asia/Vladivostok");
    });

    test("a time zone is stored in its canonical spelling", async () => {
      const c = await create({ phone_number: 9051000002, timezone: "europe/moscow" });
      expect(c.status).toBe(201);
      expect(c.body.timezone).toBe("Europe/Moscow");
    });

    test("PATCH changes only the fields given", async () => {
      const c = await create({ phone_number: 9061000001, tag: "old", timezone: "Europe/Moscow" });
      t.clock.advance(60);
      const tagOnly = await t.request("PATCH", `/api/v1/clients/${c.body.id}`, { tag: "new" });
      expect(tagOnly.status).toBe(200);
      expect(tagOnly.body).toEqual({
        ...c.body,
        tag: "new",
        updated_at: "2026-12-01T00:01:00.000Z",
      });
      const zoneOnly = await t.request("PATCH", `/api/v1/clients/${c.body.id}`, { timezone: "Asia/Vladivostok" });
      expect(zoneOnly.body).toMatchObject({ phone_number: "79061000001", tag: "new", timezone: "Asia/Vladivostok" });
      const phone = await t.request("PATCH", `/api/v1/clients/${c.body.id}`, { phone_number: "+7 (907) 100-00-01" });
      expect(phone.body).toMatchObject({ phone_number: "79071000001", operator_code: "907", tag: "new", timezone: "Asia/Vladivostok" });
      const nothing = await t.request("PATCH", `/api/v1/clients/${c.body.id}`, {});
      expect(nothing.status).toBe(200);
      expect(nothing.body).toMatchObject({ phone_number: "79071000001", tag: "new", timezone: "Asia/Vladivostok" });
      const got = await t.request("GET", `/api/v1/clients/${c.body.id}`);
      expect(got.body).toEqual(nothing.body);
      expect(got.body.created_at).toBe("2026-12-01T00:00:00.000Z");
      t.clock.set("2026-12-01T00:00:00Z");
    });

    test("PATCH operator_code alone is checked against the stored phone", async () => {
      const c = await create({ phone_number: 9081000001 });
      expectProblem(await t.request("PATCH", `/api/v1/clients/${c.body.id}`, { operator_code: "909" }), 422, "operator_code");
      expect((await t.request("PATCH", `/api/v1/clients/${c.body.id}`, { operator_code: "908" })).status).toBe(200);
      expectProblem(
        await t.request("PATCH", `/api/v1/clients/${c.body.id}`, { phone_number: 9091000001, operator_code: "908" }),
        422,
        "operator_code",
      );
    });

    test("a tag longer than 64 characters → 422 naming tag", async () => {
      expectProblem(await create({ phone_number: 9101000001, tag: "x".repeat(65) }), 422, "tag");
      expect((await create({ phone_number: 9101000001, tag: "x".repeat(64) })).status).toBe(201);
    });

    test("DELETE answers 204, then the client is gone (404) and its phone is free again", async () => {
      const c = await create({ phone_number: 9111000001, tag: "gone" });
      const del = await t.request("DELETE", `/api/v1/clients/${c.body.id}`);
      expect(del.status).toBe(204);
      expect(del.text).toBe("");
      expectProblem(await t.request("GET", `/api/v1/clients/${c.body.id}`), 404, "id");
      expectProblem(await t.request("DELETE", `/api/v1/clients/${c.body.id}`), 404, "id");
      expectProblem(await t.request("PATCH", `/api/v1/clients/${c.body.id}`, { tag: "x" }), 404, "id");
      const again = await create({ phone_number: "+7 911 100 00 01" });
      expect(again.status).toBe(201);
      expect(again.body.id).not.toBe(c.body.id);
    });

    test("unknown and malformed ids: 404 for a well-formed unknown id, 422 naming id otherwise", async () => {
      expectProblem(await t.request("GET", "/api/v1/clients/999999"), 404, "id");
      for (const id of ["abc", "-1", "0", "1.5", "99999999999999999999", "1e3"]) {
        expectProblem(await t.request("GET", `/api/v1/clients/${id}`), 422, "id");
      }
    });
  });

  describe(`[${backend}] §8 client list: cursor pagination and filters`, () => {
    let t: TestApp;
    const ids: Record<string, number> = {};
    beforeAll(async () => {
      t = await testApp(backend);
      const rows: [string, string, string][] = [
        ["a", "79101111111", "vip"],
        ["b", "79102222222", "vip"],
        ["c", "79113333333", "vip"],
        ["d", "79114444444", ""],
        ["e", "79125555555", "regular"],
      ];
      for (const [key, phone, tag] of rows) {
        const r = await t.request("POST", "/api/v1/clients", { phone_number: phone, tag });
        expect(r.status).toBe(201);
        ids[key] = r.body.id;
      }
    });
    afterAll(() => t.close());

    const list = async (query: string) => {
      const r = await t.request("GET", `/api/v1/clients${query}`);
      expect(r.status, r.text).toBe(200);
      return r.body as { items: { id: number; phone_number: string }[]; next_cursor: number | null };
    };

    test("pages of two walk every client once, in id order, and end with next_cursor null", async () => {
      const seen: number[] = [];
      let page = await list("?limit=2");
      const cursors: (number | null)[] = [];
      for (;;) {
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((c) => c.id));
        cursors.push(page.next_cursor);
        if (page.next_cursor === null) break;
        page = await list(`?limit=2&cursor=${page.next_cursor}`);
      }
      expect(seen).toEqual([ids.a!, ids.b!, ids.c!, ids.d!, ids.e!]);
      expect(cursors).toEqual([ids.b!, ids.d!, null]);
    });

    test("the default page holds everything here, with next_cursor null", async () => {
      const page = await list("");
      expect(page.items).toHaveLength(5);
      expect(page.next_cursor).toBeNull();
    });

    test("filter by tag, with pagination", async () => {
      expect((await list("?tag=vip")).items.map((c) => c.id)).toEqual([ids.a!, ids.b!, ids.c!]);
      const first = await list("?tag=vip&limit=2");
      expect(first.items.map((c) => c.id)).toEqual([ids.a!, ids.b!]);
      const second = await list(`?tag=vip&limit=2&cursor=${first.next_cursor}`);
      expect(second.items.map((c) => c.id)).toEqual([ids.c!]);
      expect(second.next_cursor).toBeNull();
      expect((await list("?tag=regular")).items.map((c) => c.id)).toEqual([ids.e!]);
      expect((await list("?tag=")).items.map((c) => c.id)).toEqual([ids.d!]);
      expect((await list("?tag=nobody")).items).toEqual([]);
    });

    test("filter by operator_code, and combined with tag", async () => {
      expect((await list("?operator_code=910")).items.map((c) => c.id)).toEqual([ids.a!, ids.b!]);
      expect((await list("?operator_code=911")).items.map((c) => c.id)).toEqual([ids.c!, ids.d!]);
      expect((await list("?operator_code=911&tag=vip")).items.map((c) => c.id)).toEqual([ids.c!]);
    });

    test("q searches the digits of the phone number, however they are written", async () => {
      expect((await list("?q=5555")).items.map((c) => c.id)).toEqual([ids.e!]);
      expect((await list(`?q=${encodeURIComponent("(911) 333")}`)).items.map((c) => c.id)).toEqual([ids.c!]);
      expect((await list("?q=791")).items).toHaveLength(5);
    });

    test("bad list parameters → 422 naming them", async () => {
      expectProblem(await t.request("GET", "/api/v1/clients?limit=0"), 422, "limit");
      expectProblem(await t.request("GET", "/api/v1/clients?limit=1001"), 422, "limit");
      expectProblem(await t.request("GET", "/api/v1/clients?limit=abc"), 422, "limit");
      expectProblem(await t.request("GET", "/api/v1/clients?cursor=abc"), 422, "cursor");
      expectProblem(await t.request("GET", "/api/v1/clients?cursor=-1"), 422, "cursor");
      expectProblem(await t.request("GET", "/api/v1/clients?tag=%00"), 422, "tag");
      expectProblem(await t.request("GET", "/api/v1/clients?operator_code=%00"), 422, "operator_code");
      expectProblem(await t.request("GET", `/api/v1/clients?tag=${"x".repeat(65)}`), 422, "tag");
    });
  });
}
