/** What the guest prelude's dispatch hands back to the isolate runtime: status, header pairs, body bytes. */
export interface GuestReply {
  status: number;
  statusText: string;
  headers: Array<[string, string]>;
  body: Uint8Array | null;
}
