// Herald's service worker: shows Web Push notifications while no Herald page is open, and opens the inbox on click.
// The payload is the JSON herald/adapters/channels/webpush.py builds: {type, notification_id, agent_id, priority, title, body, url?};
// type `resolved` (title `Resolved: ...`) replaces the notification of that id.

const PRIORITY_LABELS = { low: "Low", medium: "Medium", high: "High", critical: "Critical" };

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: event.data ? event.data.text() : "Herald" };
  }
  const label = PRIORITY_LABELS[data.priority] || "";
  const title = data.title || "Herald";
  const body = [label && data.agent_id ? `${label} · ${data.agent_id}` : data.agent_id || label, data.body]
    .filter(Boolean)
    .join("\n");
  event.waitUntil(
    self.registration.showNotification(title, {
      body,
      tag: data.notification_id || undefined, // the same notification twice replaces, not stacks
      icon: "/icon.svg",
      // A `resolved` push (the same notification id, so the same tag) replaces the shown one, quietly.
      requireInteraction: data.priority === "critical" && data.type !== "resolved",
      silent: data.type === "resolved",
      data: { url: "/#inbox", notification_id: data.notification_id },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/#inbox", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if (new URL(client.url).origin === target.origin && "focus" in client) {
          return client.focus();
        }
      }
      return self.clients.openWindow(target.href);
    }),
  );
});
