//! The escrow steps of the random schedule: quota granted and asked back, online
//! orders placed at the hub, fulfilled or cancelled at the district.

use super::*;

impl Schedule {
    pub(super) async fn grant(&mut self, at: &'static str) -> Result<String> {
        let sku = self.sku_for(at);
        let quantity = self.rng.random_range(1..=8);
        let id = self.fresh_id("grant");
        let before = self.released_at(at, sku).await?;
        let answer = self
            .cluster
            .mart(at)
            .await?
            .grant_quota(QuotaRequest {
                request_id: id.clone(),
                sku: sku.into(),
                quantity,
            })
            .await
            .map(|r| r.into_inner());
        let after = self.released_at(at, sku).await?;
        if self.judge_sellable(at, "grant", sku, quantity, (before, after), &answer)? {
            let outlet = self.outlet(at);
            outlet.record(&id, sku, 0);
            *outlet.granted.entry(sku.into()).or_default() += quantity;
            Ok(format!("{at}: grant the hub {quantity} {sku}"))
        } else {
            Ok(format!("{at}: grant of {quantity} {sku} refused"))
        }
    }

    pub(super) async fn ask_back(&mut self, at: &'static str) -> Result<String> {
        // Mostly a SKU with quota granted and not sold online yet.
        let held: Vec<&'static str> = SKUS
            .iter()
            .copied()
            .filter(|s| self.outlets[at].reserved(s, 0) > 0)
            .collect();
        let sku = if !held.is_empty() && self.rng.random_bool(0.8) {
            held.choose(&mut self.rng).copied().expect("non-empty")
        } else {
            SKUS.choose(&mut self.rng).copied().expect("skus")
        };
        let before = self.released_at(at, sku).await?;
        let reserved = self.outlets[at].reserved(sku, before);
        if reserved <= 0 {
            return Ok(format!("{at}: nothing of {sku} reserved to ask back"));
        }
        let quantity = self.rng.random_range(1..=reserved);
        let id = self.fresh_id("ret");
        let answer = self
            .cluster
            .mart(at)
            .await?
            .return_quota(QuotaRequest {
                request_id: id.clone(),
                sku: sku.into(),
                quantity,
            })
            .await
            .map(|r| r.into_inner());
        let after = self.released_at(at, sku).await?;
        match answer {
            Ok(ack) => {
                ensure!(!ack.duplicate, "{at} {id}: {ack:?}");
                let outlet = self.outlet(at);
                outlet.record(&id, sku, 0);
                *outlet.asked_back.entry(sku.into()).or_default() += quantity;
                self.tally.returns += 1;
                Ok(format!("{at}: ask the hub for {quantity} {sku} back"))
            }
            // A release that arrived meanwhile may leave less reserved than asked.
            Err(status)
                if status.code() == Code::FailedPrecondition
                    && quantity > self.outlets[at].reserved(sku, after) =>
            {
                Ok(format!("{at}: asking back {quantity} {sku} refused"))
            }
            Err(status) => {
                bail!("{at}: asking back {quantity} {sku} with {reserved} reserved got {status:?}")
            }
        }
    }

    pub(super) async fn place_order(&mut self) -> Result<String> {
        let outlet = self.district();
        let mut hub = self.cluster.mart(HUB).await?;
        let lines = quota(&mut hub, outlet).await?;
        let open: Vec<&'static str> = SKUS
            .iter()
            .copied()
            .filter(|s| {
                lines
                    .get(&(outlet.to_string(), s.to_string()))
                    .is_some_and(|l| l.available > 0)
            })
            .collect();
        let sku = if !open.is_empty() && self.rng.random_bool(0.8) {
            open.choose(&mut self.rng).copied().expect("non-empty")
        } else {
            SKUS.choose(&mut self.rng).copied().expect("skus")
        };
        let before = quota_line(&mut hub, outlet, sku).await?;
        let quantity = if before.available > 0 && self.rng.random_bool(0.25) {
            before.available + self.rng.random_range(1..=2)
        } else {
            self.rng.random_range(1..=4)
        };
        let id = self.fresh_id("ord");
        let answer = self
            .cluster
            .hub_service(HUB)
            .await?
            .place_order(PlaceOrderRequest {
                request_id: id.clone(),
                outlet: outlet.into(),
                sku: sku.into(),
                quantity,
                buyer: if self.rng.random_bool(0.5) {
                    Buyer::Asn
                } else {
                    Buyer::Public
                } as i32,
            })
            .await
            .map(|r| r.into_inner());
        let after = quota_line(&mut hub, outlet, sku).await?;
        // Grants, cancellations and releases only grow: equal at both ends, they
        // did not change while the hub decided, so `before` is what it decided on.
        let steady = (before.granted, before.cancelled, before.released)
            == (after.granted, after.cancelled, after.released);
        if steady {
            self.tally.orders_decided_exactly += 1;
        }
        let seen = format!("hub quota before {before:?}, after {after:?}");
        match answer {
            Ok(order) => {
                ensure!(
                    order.id == id
                        && order.outlet == outlet
                        && order.sku == sku
                        && order.quantity == quantity
                        && order.status == "accepted",
                    "order {id}: the hub answered {order:?}"
                );
                ensure!(
                    after.accepted == before.accepted + quantity,
                    "order {id} of {quantity} accepted: {seen}"
                );
                ensure!(
                    !steady || quantity <= before.available,
                    "order {id} of {quantity} {sku} for {outlet} accepted beyond the quota: {seen}"
                );
                self.orders.insert(
                    id.clone(),
                    PlacedOrder {
                        outlet,
                        sku: sku.into(),
                        quantity,
                        state: OrderState::Accepted,
                    },
                );
                self.tally.orders_accepted += 1;
                Ok(format!(
                    "hub: order {id} of {quantity} {sku} at {outlet} accepted"
                ))
            }
            Err(status) => {
                let said = available_in_refusal(status.message());
                ensure!(
                    status.code() == Code::FailedPrecondition
                        && said.is_some_and(|a| a < quantity && a >= 0),
                    "order {id} of {quantity} {sku} for {outlet} refused with {status:?}; {seen}"
                );
                ensure!(
                    !steady || (quantity > before.available && said == Some(before.available)),
                    "order {id} of {quantity} {sku} for {outlet} refused ({}) though the hub's \
                     quota line said {} available: {seen}",
                    status.message(),
                    before.available
                );
                ensure!(
                    after.accepted == before.accepted,
                    "a refused order changed what the hub accepted: {seen}"
                );
                self.tally.orders_refused += 1;
                Ok(format!(
                    "hub: order {id} of {quantity} {sku} at {outlet} refused ({})",
                    status.message()
                ))
            }
        }
    }

    /// Fulfils or cancels one of the open orders the district has seen.
    pub(super) async fn decide_order(&mut self, at: &'static str) -> Result<String> {
        let mut mart = self.cluster.mart(at).await?;
        let seen = orders(&mut mart, "accepted", "").await?;
        for (id, order) in &seen {
            let placed = self.orders.get(id).with_context(|| {
                format!("{at} lists an order the hub never accepted: {order:?}")
            })?;
            ensure!(
                placed.outlet == at
                    && placed.state == OrderState::Accepted
                    && placed.sku == order.sku
                    && placed.quantity == order.quantity,
                "{at} lists {order:?} as open; the model has {placed:?}"
            );
        }
        let ids: Vec<&String> = seen.keys().collect();
        let Some(id) = ids.choose(&mut self.rng).map(|s| s.to_string()) else {
            return Ok(format!("{at}: no open order seen yet"));
        };
        let fulfil = self.rng.random_bool(0.7);
        self.decide(at, &id, fulfil).await
    }

    pub(super) async fn decide(
        &mut self,
        at: &'static str,
        order: &str,
        fulfil: bool,
    ) -> Result<String> {
        let request = OrderActionRequest {
            request_id: self.fresh_id(if fulfil { "ful" } else { "cx" }),
            order_id: order.into(),
        };
        let mut mart = self.cluster.mart(at).await?;
        let ack = if fulfil {
            mart.fulfil_order(request.clone()).await
        } else {
            mart.cancel_order(request.clone()).await
        }
        .with_context(|| format!("{at}: fulfil={fulfil} order {order}"))?
        .into_inner();
        let placed = self.orders.get_mut(order).expect("checked by the caller");
        let (sku, quantity) = (placed.sku.clone(), placed.quantity);
        placed.state = if fulfil {
            OrderState::Fulfilled
        } else {
            OrderState::Cancelled
        };
        let outlet = self.outlet(at);
        if fulfil {
            outlet.record(&request.request_id, &sku, -quantity);
            *outlet.fulfilled.entry(sku.clone()).or_default() += quantity;
            self.tally.fulfilled += 1;
        } else {
            outlet.record(&request.request_id, &sku, 0);
            *outlet.cancelled.entry(sku.clone()).or_default() += quantity;
            self.tally.cancelled += 1;
        }
        let on_hand = get(&self.outlets[at].stock, &sku);
        ensure!(
            !ack.duplicate && ack.quantity_on_hand == on_hand,
            "{at}: deciding {order}: {ack:?}, the model has {on_hand} on hand"
        );
        Ok(format!(
            "{at}: {} order {order} ({quantity} {sku})",
            if fulfil { "fulfil" } else { "cancel" }
        ))
    }
}
