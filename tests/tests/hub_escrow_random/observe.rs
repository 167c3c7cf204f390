//! What the random schedule checks after every step: the acting node and the hub
//! must fit the model and the escrow laws.

use super::*;

impl Schedule {
    /// What `at` and the hub answer now must fit the model and the escrow laws.
    pub(super) async fn observe(&self, at: &str) -> Result<()> {
        let mut hub = self.cluster.mart(HUB).await?;
        let hub_quota = quota(&mut hub, "").await?;
        for ((outlet, sku), l) in &hub_quota {
            let model = self
                .outlets
                .get(outlet.as_str())
                .with_context(|| format!("the hub has quota of an unknown outlet: {l:?}"))?;
            let accepted: i64 = self
                .orders
                .values()
                .filter(|o| o.outlet == outlet && &o.sku == sku)
                .map(|o| o.quantity)
                .sum();
            ensure!(
                l.available >= 0 && l.reserved >= 0 && l.pending_returns >= 0,
                "the hub has a negative quota figure: {l:?}"
            );
            ensure!(
                l.available == l.granted - l.released - l.accepted + l.cancelled,
                "the hub's available is not granted - released - accepted + cancelled: {l:?}"
            );
            ensure!(
                l.accepted == accepted,
                "the hub says it accepted {} of {sku} for {outlet}, the orders it accepted \
                 add up to {accepted}: {l:?}",
                l.accepted
            );
            ensure!(
                l.granted <= get(&model.granted, sku)
                    && l.fulfilled <= get(&model.fulfilled, sku)
                    && l.cancelled <= get(&model.cancelled, sku)
                    && l.released <= get(&model.asked_back, sku),
                "the hub knows more than {outlet} did: {l:?}"
            );
        }
        // The hub's own warehouse is the model's; its copies of districts never negative.
        let own = stock_of(&mut hub, "").await?;
        ensure!(
            own == self.outlets[HUB].stock,
            "the hub's own stock {own:?}, the model {:?}",
            self.outlets[HUB].stock
        );
        for d in DISTRICTS {
            let copy = stock_of(&mut hub, d).await?;
            ensure!(
                copy.values().all(|q| *q >= 0),
                "the hub's copy of {d}'s stock is negative: {copy:?}"
            );
        }
        if at == HUB {
            return Ok(());
        }

        let model = &self.outlets[at];
        let mut mart = self.cluster.mart(at).await?;
        let stock = stock_of(&mut mart, "").await?;
        ensure!(
            stock.values().all(|q| *q >= 0),
            "{at} has negative stock: {stock:?}"
        );
        ensure!(
            stock == model.stock,
            "{at}: stock {stock:?}, the model {:?}",
            model.stock
        );
        let lines = quota(&mut mart, "").await?;
        // Read again after the district's lines: the hub may release more meanwhile
        // (a return request of this district reaching it), and what the district
        // knows of releases comes from the hub, so it can only trail a later reading
        // (compared with the reading above, a release in between failed the check
        // once under load).
        let hub_quota = quota(&mut hub, "").await?;
        let skus: BTreeSet<&String> = lines.keys().map(|(_, s)| s).collect();
        let granted: BTreeSet<&String> = model.granted.keys().collect();
        ensure!(
            skus == granted,
            "{at} has quota lines for {skus:?}, it granted {granted:?}"
        );
        for ((outlet, sku), l) in &lines {
            ensure!(outlet == at, "{at} lists quota of {outlet}: {l:?}");
            ensure!(
                l.granted == get(&model.granted, sku)
                    && l.fulfilled == get(&model.fulfilled, sku)
                    && l.cancelled == get(&model.cancelled, sku),
                "{at}'s quota line differs from what it recorded: {l:?}, the model {model:?}"
            );
            ensure!(
                l.available >= 0 && l.reserved >= 0 && l.pending_returns >= 0,
                "{at} has a negative quota figure: {l:?}"
            );
            ensure!(
                l.reserved == l.granted - l.fulfilled - l.released,
                "{at}'s reserved is not granted - fulfilled - released: {l:?}"
            );
            let on_hand = get(&model.stock, sku);
            ensure!(
                l.reserved <= on_hand,
                "{at} reserves {} of {sku} for the hub with {on_hand} on hand: {l:?}",
                l.reserved
            );
            let open: i64 = self
                .orders
                .values()
                .filter(|o| o.outlet == at && &o.sku == sku && o.state == OrderState::Accepted)
                .map(|o| o.quantity)
                .sum();
            ensure!(
                open <= l.reserved,
                "{at} reserves {} of {sku} but the hub has {open} in open orders: {l:?}",
                l.reserved
            );
            let at_hub = hub_quota.get(&(outlet.clone(), sku.clone()));
            ensure!(
                l.released <= at_hub.map_or(0, |h| h.released),
                "{at} knows of more released than the hub: {l:?} vs {at_hub:?}"
            );
        }
        Ok(())
    }
}
